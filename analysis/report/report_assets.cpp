#include "report/report_assets.h"

namespace muspec::analysis {

const char* report_css() {
  // .figs: content-visibility:auto lets the browser skip layout and paint of figure grids that
  // are off screen (thousands of markers on a 10,000-matrix page): 10k-matrix page opened in a
  // median 2.0 s against 2.7 s without it (docs/report.md); printing shows them all.
  return R"CSS(
body{font-family:sans-serif;margin:0;color:#222;font-size:14px}
header{background:#f4f4f4;padding:6px 16px;border-bottom:1px solid #ccc}
header h1{display:inline;font-size:18px;margin-right:16px} nav a{margin-right:10px}
main{padding:8px 16px;max-width:1400px}
h2{border-bottom:1px solid #ccc;margin-top:28px} h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:12px;margin:4px 0 12px}
th,td{border:1px solid #ddd;padding:2px 5px;text-align:right;white-space:nowrap}
td.t,th.t{text-align:left} th{background:#f0f0f0;cursor:pointer;position:sticky;top:0}
th.asc::after{content:" \25B2"} th.desc::after{content:" \25BC"}
tr:nth-child(even){background:#fafafa} .overview td{white-space:normal} .note{color:#555;font-size:12px}
button.m{border:none;background:none;color:#05c;cursor:pointer;padding:0;font:inherit;text-align:left}
.figs{display:flex;flex-wrap:wrap;gap:6px} .figs svg{border:1px solid #eee}
.figs{content-visibility:auto;contain-intrinsic-size:auto 600px}
#spectrum-view{position:sticky;bottom:0;background:#fff;border-top:2px solid #888;padding:4px}
#spectrum-view:empty{display:none}
.heat td{width:34px;text-align:center}
@media print{th{position:static}#spectrum-view,#filter,nav{display:none}details{display:block}.figs{content-visibility:visible}}
)CSS";
}

const char* report_js() {
  return R"JS(
(function(){
function val(td){var v=td.getAttribute('data-v');var x=parseFloat(v);
  if(v===null)return td.textContent;if(v==='nan')return NaN;if(v==='inf')return Infinity;return isNaN(x)?v:x;}
function cmp(a,b){if(typeof a==='number'&&typeof b==='number')return a-b;
  return String(a)<String(b)?-1:String(a)>String(b)?1:0;}
function sortTable(t,key,dir){var ths=t.tHead.rows[0].cells,c=-1;
  for(var i=0;i<ths.length;i++){ths[i].classList.remove('asc','desc');if(ths[i].getAttribute('data-key')===key)c=i;}
  if(c<0)return;ths[c].classList.add(dir);t.setAttribute('data-sort',key+':'+dir);if(!t.hasAttribute('data-built'))return;
  var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);
  rows.sort(function(r,s){var a=val(r.cells[c]),z=val(s.cells[c]);
    var an=typeof a==='number'&&isNaN(a),zn=typeof z==='number'&&isNaN(z);
    if(an||zn)return an===zn?0:(an?1:-1);var d=cmp(a,z);return dir==='asc'?d:-d;});
  rows.forEach(function(r){b.appendChild(r);});}
function allTables(){return document.querySelectorAll('table.sortable');}
function esc(s){return String(s).replace(/[&<>"']/g,function(c){return '&#'+c.charCodeAt(0)+';';});}
function rowsOf(t){var s=document.getElementById('rows-'+t.id);return s?JSON.parse(s.textContent):[];}
// A table's rows are built from its JSON when it is first shown (a pending sort and the filter then apply).
function build(t){if(t.hasAttribute('data-built'))return;var rows=rowsOf(t),h=[];
  for(var j=0;j<rows.length;j++){var r=rows[j],x='<tr><td class="t"><button class="m" data-i="'+r[0]+'">'+esc(r[1])+
    '</button></td><td class="t">'+esc(r[2])+'</td><td class="t">'+esc(r[3])+'</td>';
    for(var k=4;k<r.length;k++){var c=r[k],p=c.indexOf('|');x+='<td data-v="'+esc(p<0?c:c.slice(p+1))+'">'+esc(p<0?c:c.slice(0,p))+'</td>';}
    h.push(x+'</tr>');}
  t.tBodies[0].innerHTML=h.join('');t.setAttribute('data-built','1');
  var ps=t.getAttribute('data-sort');if(ps){var a=ps.split(':');sortTable(t,a[0],a[1]);}filter(t);}
function buildIn(d){var ts=d.querySelectorAll('table.sortable');for(var i=0;i<ts.length;i++)build(ts[i]);}
function openAll(){document.querySelectorAll('details').forEach(function(d){d.open=true;buildIn(d);});}
document.addEventListener('toggle',function(e){if(e.target.open)buildIn(e.target);},true);
function nameOf(i){var b=document.querySelector('button.m[data-i="'+i+'"]');if(b)return b.textContent;
  var ts=allTables();for(var k=0;k<ts.length;k++){var rows=rowsOf(ts[k]);
    for(var j=0;j<rows.length;j++)if(rows[j][0]===i)return rows[j][1];}return null;}
document.addEventListener('click',function(e){var th=e.target.closest('th[data-key]');
  if(th){var t=th.closest('table');sortTable(t,th.getAttribute('data-key'),th.classList.contains('asc')?'desc':'asc');return;}
  var m=e.target.closest('button.m');if(m)showSpectrum(parseInt(m.getAttribute('data-i'),10),m.textContent);});
var data=null;
function parsed(id){var s=document.getElementById(id);return s?JSON.parse(s.textContent):[];}
var settings=null;
function spectra(){if(!data){data=parsed('spectra-data');settings=parsed('ns-settings');}return data;}
function showSpectrum(i,name){var d=spectra()[i],v=document.getElementById('spectrum-view');if(!v)return;
  if(!d){v.textContent=name+': not analysed';return;}
  var n=d[0],r=d[1],y=[],thr=d[3],lb=d[4],W=640,H=260,L=60,R=W-14,T=24,B=H-34;
  for(var a=0,acc=0;a<d[2].length;a++){acc=a?acc-d[2][a]:d[2][0];y.push(acc/1000);}
  if(r.length===0){r=[];for(var k=1;k<=y.length;k++)r.push(k);}else{r=r.slice();for(var k2=1;k2<r.length;k2++)r[k2]+=r[k2-1];}
  var st=(d[6]===null||d[6]===undefined)?null:settings[d[6]];
  var mapped=null;if(st){mapped=y.map(function(l){var x=Math.pow(10,l)/(1+st[0]);
    for(var q=1;q<st.length;q++){var c=st[q],x2=x*x;x=x*(c[0]+x2*(c[1]+x2*c[2]));}return Math.log10(Math.max(Math.abs(x),1e-300));});}
  var ys=y.slice();if(thr!==null)ys.push(Math.log10(thr));if(lb!==null)ys.push(Math.log10(lb));
  if(mapped)mapped.forEach(function(l){if(l>-12)ys.push(l);});
  var ylo=Math.floor(Math.min.apply(null,ys)),yhi=Math.ceil(Math.max.apply(null,ys));if(yhi<=ylo)yhi=ylo+1;
  var xhi=Math.max(1,Math.ceil(Math.log10(n)));if(Math.log10(n)>=xhi)xhi+=0;
  function px(k){return L+Math.log10(k)/xhi*(R-L);} function py(l){return B-(l-ylo)/(yhi-ylo)*(B-T);}
  var s='<svg xmlns="http://www.w3.org/2000/svg" width="'+W+'" height="'+H+'" class="spectrum" data-i="'+i+'">';
  s+='<rect width="100%" height="100%" fill="white"/><rect x="'+L+'" y="'+T+'" width="'+(R-L)+'" height="'+(B-T)+'" fill="none" stroke="#999"/>';
  for(var e=ylo;e<=yhi;e++)s+='<line class="ytick" data-label="1e'+e+'" x1="'+L+'" x2="'+R+'" y1="'+py(e)+'" y2="'+py(e)+'" stroke="#eee"/><text x="'+(L-4)+'" y="'+(py(e)+4)+'" font-size="10" text-anchor="end">1e'+e+'</text>';
  for(var e2=0;e2<=xhi;e2++)s+='<text x="'+px(Math.pow(10,e2))+'" y="'+(B+14)+'" font-size="10" text-anchor="middle">1e'+e2+'</text>';
  var p='';for(var j=0;j<y.length;j++)p+=(j?'L':'M')+px(r[j]).toFixed(2)+' '+py(y[j]).toFixed(2);
  s+='<path class="sigma" d="'+p+'" fill="none" stroke="#1f77b4" stroke-width="1.5"/>';
  if(mapped){var pm='';for(var j2=0;j2<mapped.length;j2++)if(mapped[j2]>=ylo)pm+=(pm?'L':'M')+px(r[j2]).toFixed(2)+' '+py(mapped[j2]).toFixed(2);
    s+='<path class="mapped" d="'+pm+'" fill="none" stroke="#ff7f0e" stroke-width="1.5"/><text x="'+(R-4)+'" y="'+(T+12)+'" font-size="10" text-anchor="end" fill="#ff7f0e">after '+(st.length-1)+' NS steps</text>';}
  if(thr!==null)s+='<line x1="'+L+'" x2="'+R+'" y1="'+py(Math.log10(thr))+'" y2="'+py(Math.log10(thr))+'" stroke="#d62728" stroke-dasharray="5 3"/><text x="'+(R-4)+'" y="'+(py(Math.log10(thr))-4)+'" font-size="10" text-anchor="end" fill="#d62728">schedule threshold '+thr.toPrecision(4)+'</text>';
  if(lb!==null)s+='<line x1="'+L+'" x2="'+R+'" y1="'+py(Math.log10(lb))+'" y2="'+py(Math.log10(lb))+'" stroke="#2ca02c" stroke-dasharray="2 2"/><text x="'+(L+4)+'" y="'+(py(Math.log10(lb))+12)+'" font-size="10" fill="#2ca02c">lower bound '+lb.toPrecision(4)+(d[5]?' \u2192 ['+d[5][0].toPrecision(4)+', '+d[5][1].toPrecision(4)+']':'')+'</text>';
  s+='<text x="'+((L+R)/2)+'" y="'+(H-4)+'" font-size="11" text-anchor="middle">rank (largest first, log)</text>';
  s+='<text x="'+L+'" y="16" font-size="12" font-weight="bold"></text></svg>';
  v.innerHTML=s;v.querySelector('text[font-weight]').textContent=name+' \u2014 \u03C3/\u2016X\u2016_F, '+n+' values';}
function applyHash(){var h=decodeURIComponent(location.hash.slice(1));h.split('&').forEach(function(kv){
  var p=kv.split('=');if(p[0]==='sort'&&p[1]){var a=p[1].split(':');var ts=allTables();
    for(var i=0;i<ts.length;i++)sortTable(ts[i],a[0],a[1]==='desc'?'desc':'asc');}
  if(p[0]==='open'&&p[1]==='all')openAll();
  if(p[0]==='spectrum'&&p[1]){var i=parseInt(p[1],10),nm=nameOf(i);if(nm!==null)showSpectrum(i,nm);}
  if(p[0]==='filter'){var f=document.getElementById('filter');if(f){f.value=p[1]||'';filter();}}});}
function filter(t){var f=document.getElementById('filter');var q=f?f.value.toLowerCase():'';
  (t?t.querySelectorAll('tbody tr'):document.querySelectorAll('table.sortable tbody tr')).forEach(function(r){
    r.style.display=r.cells[0].textContent.toLowerCase().indexOf(q)>=0?'':'none';});}
document.addEventListener('input',function(e){if(e.target.id==='filter')filter();});
document.querySelectorAll('details[open]').forEach(buildIn);
window.addEventListener('hashchange',applyHash);applyHash();
window.addEventListener('beforeprint',openAll);
})();
)JS";
}

}  // namespace muspec::analysis
