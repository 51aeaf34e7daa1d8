#!/usr/bin/env python3
# The --shard scheduler as a model (docs/cluster.md): longest-processing-time-first over the cost
# model of analysis/scan/shard.h (m*n*min(m,n) + min(m,n)^3), for a DeepSeek-V3-shaped and a
# Llama-3-405B-shaped checkpoint; prints the busiest part over the ideal (total / parts).
# A re-statement of assign_parts() in Python, for planning only: it reads no checkpoint.
import heapq
def cost(m,n): k=min(m,n); return m*n*k+k**3
def ds():
    out=[]
    for l in range(61):
        out += [(1536,7168),(24576,1536),(576,7168),(32768,512),(7168,16384)]
        if l<3: out += [(18432,7168)]*2+[(7168,18432)]
        else: out += [(2048,7168)]*2*257+[(7168,2048)]*257
    return out
def llama():
    out=[]
    for l in range(126): out += [(16384,16384),(1024,16384),(1024,16384),(16384,16384),(53248,16384),(53248,16384),(16384,53248)]
    return out
def lpt(c,n):
    c=sorted(c,reverse=True); h=[(0.0,i) for i in range(n)]
    for x in c:
        l,i=heapq.heappop(h); heapq.heappush(h,(l+x,i))
    return max(l for l,_ in h)
for name,s in (("DeepSeek-V3-shaped",ds()),("Llama-3-405B-shaped",llama())):
    c=[cost(m,n) for m,n in s]; tot=sum(c)
    print(name,len(c),"matrices")
    for n in (1,2,8,32,64,128,256):
        mk=lpt(c,n); ideal=max(tot/n,max(c))
        print(f"  {n:4d} parts: makespan/ideal(sum/N) = {mk/(tot/n):.4f}, vs lower bound max(sum/N, largest) = {mk/ideal:.4f}")
