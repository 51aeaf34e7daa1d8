// The CUDA spectral backend: cuBLAS + cuSOLVER, mirroring spectra/cpu/cpu_backend.cpp.
//
// Several scan workers call singular_values() at once; each call borrows its own CudaContext
// (stream + handles + buffers) from a pool, so host-side reading and decoding of one matrix
// overlaps the transfer and GPU work of others. Device memory is bounded by a budget: a call
// waits until its bytes are free, and a matrix that can never fit runs on the CPU backend
// instead (as does any call whose allocation fails or that cuSOLVER cannot finish), never an
// out-of-memory crash.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <condition_variable>
#include <mutex>

#include "core/error.h"
#include "spectra/cpu/cpu_backend.h"
#include "spectra/cuda/cuda_context.h"
#include "spectra/cuda/cusolver.h"
#include "spectra/cuda/decode.h"
#include "spectra/cuda/entry_points.h"
#include "spectra/gpu_choice.h"

namespace muspec {

namespace {

constexpr int kDefaultStreams = 8;  // measured on an H100: 4 -> 8 streams took the 8B set from 33 s to 23 s; 16 no better
// An idle context keeps its buffers up to this much (1/8 of the free memory shared by the
// streams, at most 1.5 GiB: every Llama-70B-sized matrix but the largest), because freeing
// them (cudaFree) waits for the whole device and stalls every other stream.
constexpr size_t kMaxKeepBytes = size_t{1536} << 20;
constexpr size_t kContextOverheadBytes = size_t{128} << 20;  // handles + cuSOLVER internals

thread_local bool t_fell_back = false;  // did this thread's last call run on the CPU?

/// Device bytes that calls may hold at once. acquire() blocks until enough is free.
class DeviceMemoryBudget {
 public:
  explicit DeviceMemoryBudget(size_t total) : total_(total), free_(total) {}
  size_t total() const { return total_; }
  void acquire(size_t bytes) {
    std::unique_lock<std::mutex> lock(mu_);
    freed_.wait(lock, [&] { return free_ >= bytes; });
    free_ -= bytes;
  }
  void release(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      free_ += bytes;
    }
    freed_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable freed_;
  size_t total_, free_;
};

class CudaBackend final : public SpectralBackend {
 public:
  CudaBackend(int device, const BackendOptions& o)
      : device_(device), streams_(o.gpu_streams > 0 ? o.gpu_streams : kDefaultStreams), cpu_(make_cpu_backend(o)) {
    cuda::check(cudaSetDevice(device_), "cudaSetDevice");
    // Threads waiting on a stream sleep instead of spinning: up to --gpu-streams workers wait
    // on long solves while the host cores read and decode the next matrices.
    if (cudaSetDeviceFlags(cudaDeviceScheduleBlockingSync) != cudaSuccess) (void)cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cuda::device_memory(&free_bytes, &total_bytes);
    keep_bytes_ = std::min(kMaxKeepBytes, free_bytes / (8 * static_cast<size_t>(streams_)));
    const size_t reserve = static_cast<size_t>(streams_) * (keep_bytes_ + kContextOverheadBytes);
    const size_t usable = free_bytes > reserve ? static_cast<size_t>(0.85 * static_cast<double>(free_bytes - reserve)) : 0;
    budget_ = std::make_unique<DeviceMemoryBudget>(usable);
    eigensolver_ = gram_eigensolver_from_environment();
    description_ = "cuda: GPU " + visible_gpu_name(device_, std::getenv("CUDA_VISIBLE_DEVICES")) + ": " +
                   cuda::describe_device(device_) + ", " + std::to_string(streams_) + " streams, " +
                   (eigensolver_ == cuda::GramEigensolver::Syevd ? "cuSOLVER Xsyevd" : "cuSOLVER Dsytrd + host dsterf") +
                   "/Xgesvd float64; CPU fallback for matrices over " +
                   std::to_string(usable >> 20) + " MiB";
  }

  Device device() const override { return Device::Cuda; }
  std::string description() const override { return description_; }
  int preferred_concurrency() const override { return streams_; }

  std::vector<std::string> notices() const override {
    std::vector<std::string> out;
    const std::lock_guard<std::mutex> lock(notice_mu_);
    if (device_errors_ > 0)
      out.push_back("GPU: " + std::to_string(device_errors_) + " matri" + (device_errors_ == 1 ? "x was" : "ces were") +
                    " computed on the CPU after a device error" + (broken_ ? " (the rest of the scan ran on the CPU)" : "") +
                    "; the first: " + first_device_error_);
    if (const int64_t n = out_of_memory_.load(); n > 0)
      out.push_back("GPU: " + std::to_string(n) + (n == 1 ? " matrix" : " matrices") +
                    " did not fit in free device memory and " + (n == 1 ? "was" : "were") + " computed on the CPU");
    return out;
  }

  /// The scan's route: the stored bytes go up as they are (half the PCIe traffic of float32,
  /// a quarter of float64 for bf16) and are decoded on the device, where they stay for gram
  /// and, under auto, for svd. Layouts the device cannot decode use the host decoder.
  StoredSpectrum spectrum_of_stored(const MatrixView& m, InputTransform transform, SpectralMethod method,
                                    const std::string& label) override {
    // gram32 is a CPU route (its speed comes from float32 BLAS on the host).
    if (method == SpectralMethod::Gram32) return cpu_->spectrum_of_stored(m, transform, method, label);
    const std::optional<cuda::StoredLayout> layout = cuda::device_layout(m);
    if (!layout) return SpectralBackend::spectrum_of_stored(m, transform, method, label);
    const int64_t rows = layout->rows, cols = layout->cols;
    // gram: matrix + Gram + workspace; svd: matrix + transposed copy + workspace; auto can hold
    // all of it at once (the Gram buffers stay while svd runs), the float64 matrix counted once.
    const size_t matrix_bytes = static_cast<size_t>(rows * cols) * sizeof(double);
    size_t bytes = method == SpectralMethod::Gram ? cuda::gram_device_bytes(rows, cols)
                   : method == SpectralMethod::Svd
                       ? cuda::svd_device_bytes(rows, cols)
                       : cuda::gram_device_bytes(rows, cols) + cuda::svd_device_bytes(rows, cols) - matrix_bytes;
    StoredSpectrum out;
    const bool ok = on_gpu(layout->bytes() + bytes, [&](cuda::CudaContext& ctx) {
      void* d_stored = ctx.stored.reserve(layout->bytes());
      ctx.upload(d_stored, m.base, layout->bytes());
      auto* d_x = static_cast<double*>(ctx.matrix.reserve(matrix_bytes));
      out.conversion = cuda::decode_on_device(ctx, d_stored, *layout, transform, d_x);
      if (out.conversion.nonfinite > 0) return;
      out.values = by_policy(
          method, rows, cols,
          [&] { return ascending_sigma(cuda::gram_eigenvalues_on_device(ctx, d_x, rows, cols, label, eigensolver_)); },
          [&] { return ascending(cuda::gesvd_values_on_device(ctx, d_x, rows, cols, label)); });
    });
    // The device could not take it: the CPU backend decodes and answers.
    return ok ? out : cpu_->spectrum_of_stored(m, transform, method, label);
  }

 protected:
  Device device_of_last_call() const override { return t_fell_back ? Device::Cpu : Device::Cuda; }

  std::vector<double> gram_values(const std::vector<double>& x, int64_t rows, int64_t cols,
                                  const std::string& label) override {
    std::vector<double> sigma;
    const bool ok = on_gpu(cuda::gram_device_bytes(rows, cols), [&](cuda::CudaContext& ctx) {
      sigma = ascending_sigma(cuda::gram_eigenvalues(ctx, x.data(), rows, cols, label, eigensolver_));
    });
    return ok ? sigma : cpu_gram(x, rows, cols, label);
  }

  std::vector<double> svd_values(std::vector<double>& x, int64_t rows, int64_t cols,
                                 const std::string& label) override {
    std::vector<double> s;
    const bool ok = on_gpu(cuda::svd_device_bytes(rows, cols), [&](cuda::CudaContext& ctx) {
      s = ascending(cuda::gesvd_values(ctx, x.data(), rows, cols, label));
    });
    return ok ? s : cpu_->singular_values(x, rows, cols, SpectralMethod::Svd, label).sigma;
  }

  /// gram32 is a CPU route (its speed comes from float32 BLAS on the host): the CPU backend
  /// answers, and the record says cpu.
  ValuesRoute gram32_route(const std::vector<double>& x, int64_t rows, int64_t cols, const std::string& label) override {
    return [this, &x, rows, cols, &label] {
      t_fell_back = true;
      std::vector<double> copy = x;  // singular_values may overwrite its input; x stays intact
      return cpu_->singular_values(copy, rows, cols, SpectralMethod::Gram32, label).sigma;
    };
  }

 private:
  static std::vector<double> ascending(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v;
  }
  /// Singular values from Gram eigenvalues; rounding can make an eigenvalue of a PSD matrix < 0.
  static std::vector<double> ascending_sigma(std::vector<double> lambda) {
    for (double& v : lambda) v = std::sqrt(std::max(v, 0.0));
    return ascending(std::move(lambda));
  }

  /// Runs `work` on a pooled context within the memory budget. Returns false (and the caller
  /// uses the CPU) when the matrix cannot fit on the device.
  template <class Work>
  bool on_gpu(size_t bytes, Work&& work) {
    t_fell_back = false;
    if (broken_) return fall_back();
    if (bytes > budget_->total()) {
      ++out_of_memory_;
      return fall_back();
    }
    std::unique_ptr<cuda::CudaContext> ctx;
    try {
      ctx = borrow();  // a new context allocates pinned staging memory and may fail
    } catch (const NumericalError& e) {
      note_device_error(e.what());
      return fall_back();
    }
    cudaSetDevice(device_);  // the calling thread may not have chosen it yet
    Lease lease(*this, std::move(ctx), bytes);
    bool ok = true;
    try {
      work(lease.context());
      lease.succeeded();
    } catch (const cuda::DeviceOutOfMemory&) {
      ok = false;
      ++out_of_memory_;
    } catch (const NumericalError& e) {
      // cuSOLVER did not converge, or the device failed. Either way the CPU answers this
      // matrix, and the user hears of it (a systematic device error must not hide behind
      // correct CPU results); a device error that sticks (cudaDeviceSynchronize fails) sends
      // every later matrix to the CPU as well.
      ok = false;
      note_device_error(e.what());
      if (cudaDeviceSynchronize() != cudaSuccess) broken_ = true;
    }
    return ok ? true : fall_back();
  }

  void note_device_error(const std::string& what) {
    const std::lock_guard<std::mutex> lock(notice_mu_);
    if (device_errors_++ == 0) first_device_error_ = what;
  }


  /// Holds `bytes` of the budget and a pooled context for one call; gives both back however
  /// the call ends (an unexpected exception must not leave other streams waiting forever).
  class Lease {
   public:
    Lease(CudaBackend& b, std::unique_ptr<cuda::CudaContext> ctx, size_t bytes) : b_(b), ctx_(std::move(ctx)), bytes_(bytes) {
      b_.budget_->acquire(bytes_);
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (failed_ || ctx_->held_bytes() > b_.keep_bytes_) ctx_->trim();
      b_.budget_->release(bytes_);
      b_.give_back(std::move(ctx_));
    }
    cuda::CudaContext& context() { return *ctx_; }
    void succeeded() { failed_ = false; }

   private:
    CudaBackend& b_;
    std::unique_ptr<cuda::CudaContext> ctx_;
    size_t bytes_;
    bool failed_ = true;  // until the work says otherwise: an exception leaves it set
  };

  bool fall_back() {
    t_fell_back = true;
    return false;
  }

  std::vector<double> cpu_gram(const std::vector<double>& x, int64_t rows, int64_t cols, const std::string& label) {
    std::vector<double> copy = x;
    return cpu_->singular_values(copy, rows, cols, SpectralMethod::Gram, label).sigma;
  }

  /// A context from the pool; at most streams_ exist, so extra callers wait for one.
  std::unique_ptr<cuda::CudaContext> borrow() {
    std::unique_lock<std::mutex> lock(pool_mu_);
    returned_.wait(lock, [&] { return !pool_.empty() || created_ < streams_; });
    if (!pool_.empty()) {
      auto ctx = std::move(pool_.back());
      pool_.pop_back();
      return ctx;
    }
    ++created_;
    lock.unlock();
    try {
      return std::make_unique<cuda::CudaContext>(device_);
    } catch (...) {
      lock.lock();
      --created_;
      returned_.notify_one();
      throw;
    }
  }

  void give_back(std::unique_ptr<cuda::CudaContext> ctx) {
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      pool_.push_back(std::move(ctx));
    }
    returned_.notify_one();
  }

  /// MUSPEC_GPU_EIGENSOLVER=syevd|sytrd picks the gram route's eigensolver, for measuring
  /// the two against each other (docs/benchmarks.md, "GPU"); anything else is refused.
  static cuda::GramEigensolver gram_eigensolver_from_environment() {
    const char* v = std::getenv("MUSPEC_GPU_EIGENSOLVER");
    if (!v || std::string(v).empty() || std::string(v) == "syevd") return cuda::GramEigensolver::Syevd;
    if (std::string(v) == "sytrd") return cuda::GramEigensolver::SytrdSterf;
    throw UsageError(std::string("MUSPEC_GPU_EIGENSOLVER='") + v + "' (expected syevd or sytrd)");
  }

  int device_;
  int streams_;
  size_t keep_bytes_ = 0;
  cuda::GramEigensolver eigensolver_ = cuda::GramEigensolver::Syevd;
  std::unique_ptr<SpectralBackend> cpu_;
  std::unique_ptr<DeviceMemoryBudget> budget_;
  std::string description_;
  std::mutex pool_mu_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<cuda::CudaContext>> pool_;
  int created_ = 0;
  std::atomic<bool> broken_{false};
  mutable std::mutex notice_mu_;
  int64_t device_errors_ = 0;        ///< guarded by notice_mu_
  std::string first_device_error_;   ///< guarded by notice_mu_
  std::atomic<int64_t> out_of_memory_{0};
};

}  // namespace

namespace cuda {

int devices_present() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

std::unique_ptr<SpectralBackend> try_make_backend(const BackendOptions& options, std::string* why) {
  int n = 0;
  if (const cudaError_t status = cudaGetDeviceCount(&n); status != cudaSuccess || n == 0) {
    // The driver saw a GPU (the loader checked), so a failure here is usually a driver older
    // than this CUDA runtime: say so rather than "no device".
    if (why)
      *why = status == cudaSuccess ? "no CUDA device found"
                                   : std::string("the CUDA runtime cannot use this driver: ") + cudaGetErrorString(status);
    return nullptr;
  }
  try {
    return std::make_unique<CudaBackend>(gpu_for_local_rank(options.local_rank, n), options);  // one GPU per local rank
  } catch (const UsageError&) {
    throw;  // a bad MUSPEC_GPU_EIGENSOLVER is the user's to fix, not a reason to use the CPU
  } catch (const Error& e) {  // DeviceOutOfMemory included
    if (why) *why = std::string("the CUDA device could not be used: ") + e.what();
  }
  return nullptr;
}

}  // namespace cuda
}  // namespace muspec
