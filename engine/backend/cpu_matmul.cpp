// ops::matmul: validates the jobs, picks one registered kernel per job, prepares each distinct
// activation input once (quantized / converted as the weight type requires, by the quantize_<act>
// kernel bound with the weight), then runs the row chunks of all jobs in a single parallel region.
#include "engine/backend/cpu_matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace tessera::ops {

namespace {

struct ActBuffers {
  std::vector<int8_t> qs;    // [n_tokens][n_in]
  std::vector<float> d;      // [n_tokens][n_in / 32]
  std::vector<int32_t> s;    // [n_tokens][n_in / 16]
  std::vector<int32_t> s32;  // [n_tokens][n_in / 32]
  std::vector<uint16_t> h16; // [n_tokens][n_in]
};

struct JobPlan {
  const MatmulKernel* kernel = nullptr;
  QuantizeFn quantize = nullptr;  // prepares this job's activations (owns_acts)
  PreparedActs acts;
  bool active = false;    // has rows and tokens
  bool owns_acts = false; // its activations are quantized here (not shared with an earlier job)
};

struct Task {
  int32_t job;
  int64_t row_begin, row_end;
};

struct QuantTask {
  int32_t job;
  int64_t t_begin, t_end;
};

void validate(const MatmulJob& j, size_t index) {
  const WeightView& w = j.w;
  if (w.n_in < 0 || w.n_out < 0 || j.n_tokens < 0)
    throw_error("matmul job {}: negative size (n_in={} n_out={} n_tokens={})", index, w.n_in, w.n_out, j.n_tokens);
  const TypeTraits* tr = find_type_traits(static_cast<uint32_t>(w.type));
  if (!tr) throw_error("matmul job {}: unknown weight type id {}", index, static_cast<uint32_t>(w.type));
  if (w.n_in % tr->block_size != 0)
    throw_error("matmul job {}: n_in={} is not a multiple of the {} block size {}", index, w.n_in, tr->name,
                tr->block_size);
  if (w.n_out == 0 || j.n_tokens == 0) return;
  const size_t need = row_bytes(w.type, w.n_in);
  if (w.row_bytes != need)
    throw_error("matmul job {}: row_bytes={} but a {} row of {} values is {} bytes", index, w.row_bytes, tr->name,
                w.n_in, need);
  if (!w.data && need > 0) throw_error("matmul job {}: weight data is null", index);
  if (!j.x && w.n_in > 0) throw_error("matmul job {}: x is null", index);
  if (!j.y) throw_error("matmul job {}: y is null", index);
  if (j.x_stride < w.n_in) throw_error("matmul job {}: x_stride={} < n_in={}", index, j.x_stride, w.n_in);
  if (j.y_stride < w.n_out) throw_error("matmul job {}: y_stride={} < n_out={}", index, j.y_stride, w.n_out);
}

bool same_input(const MatmulJob& a, const MatmulJob& b, ActType ta, ActType tb) {
  return a.x == b.x && a.x_stride == b.x_stride && a.n_tokens == b.n_tokens && a.w.n_in == b.w.n_in && ta == tb;
}

PreparedActs make_acts(const MatmulJob& j, ActType type, ActBuffers& buf) {
  PreparedActs p;
  p.type = type;
  p.n_tokens = j.n_tokens;
  p.n_in = j.w.n_in;
  const size_t n = static_cast<size_t>(j.n_tokens * j.w.n_in);
  switch (type) {
    case ActType::F32:
      p.f32 = j.x;
      p.f32_stride = j.x_stride;
      break;
    case ActType::F16: case ActType::BF16:
      if (buf.h16.size() < n) buf.h16.resize(n);
      p.h16 = buf.h16.data();
      break;
    case ActType::Q8_0: case ActType::Q8_1: case ActType::Q8_K:
      if (buf.qs.size() < n) buf.qs.resize(n);
      if (buf.d.size() < n / 32) buf.d.resize(n / 32);
      if (buf.s.size() < n / 16) buf.s.resize(n / 16);
      if (buf.s32.size() < n / 32) buf.s32.resize(n / 32);
      p.qs = buf.qs.data();
      p.d = buf.d.data();
      p.s = buf.s.data();
      p.s32 = buf.s32.data();
      break;
  }
  return p;
}

// The activation quantizer of each type with no override, for jobs that come without bound kernels.
QuantizeFn default_quantizer(ActType act, const DeviceCaps& host) {
  static const std::vector<QuantizeFn> by_type = [&] {
    std::vector<QuantizeFn> v(6, nullptr);
    for (ActType a : {ActType::F16, ActType::BF16, ActType::Q8_0, ActType::Q8_1, ActType::Q8_K})
      v[static_cast<size_t>(a)] = KernelPolicy().choose_op(quantize_op_key(a), host).fn<QuantizeFn>();
    return v;
  }();
  return by_type[static_cast<size_t>(act)];
}

}  // namespace

void matmul(std::span<const MatmulJob> jobs, ThreadPool& pool) {
  static const DeviceCaps host = host_caps();
  // Scratch reused across calls from the same caller thread. The lambdas below run on pool threads too,
  // so they must reach these through references, never by naming the thread_locals.
  thread_local std::vector<JobPlan> tl_plans;
  thread_local std::vector<ActBuffers> tl_buffers;
  thread_local std::vector<Task> tl_tasks;
  thread_local std::vector<QuantTask> tl_quant_tasks;
  std::vector<JobPlan>& plans = tl_plans;
  std::vector<ActBuffers>& buffers = tl_buffers;
  std::vector<Task>& tasks = tl_tasks;
  std::vector<QuantTask>& quant_tasks = tl_quant_tasks;
  plans.assign(jobs.size(), JobPlan{});
  if (buffers.size() < jobs.size()) buffers.resize(jobs.size());
  tasks.clear();
  quant_tasks.clear();

  // Pick kernels and lay out the activation buffers (an input shared by several jobs is prepared once).
  int64_t quant_values = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const MatmulJob& j = jobs[i];
    validate(j, i);
    if (j.w.n_out == 0 || j.n_tokens == 0) continue;
    if (j.w.n_in == 0) {  // an empty sum
      for (int64_t t = 0; t < j.n_tokens; ++t) std::fill_n(j.y + t * j.y_stride, j.w.n_out, 0.0f);
      continue;
    }
    JobPlan& p = plans[i];
    p.kernel = j.kernel    ? j.kernel
               : j.kernels ? &j.kernels->for_tokens(j.n_tokens)
                           : &KernelPolicy().choose(MatmulShape{j.w.type, j.w.n_in, j.w.n_out, j.n_tokens}, host);
    p.active = true;
    for (size_t k = 0; k < i && !p.owns_acts; ++k) {
      if (plans[k].active && same_input(jobs[k], j, plans[k].kernel->act, p.kernel->act)) {
        p.acts = plans[k].acts;
        break;
      }
    }
    if (p.acts.n_tokens == 0) {
      p.acts = make_acts(j, p.kernel->act, buffers[i]);
      p.owns_acts = p.kernel->act != ActType::F32;
      if (p.owns_acts) {
        const QuantizeFn bound = j.kernels ? j.kernels->quantizer(p.kernel->act) : nullptr;
        p.quantize = bound ? bound : default_quantizer(p.kernel->act, host);
      }
      if (p.owns_acts) quant_values += j.n_tokens * j.w.n_in;
    }
  }

  // Prepare activations: inline when small (decode), across the pool when large (prefill).
  const bool parallel_quant = pool.size() > 1 && quant_values >= (1 << 16);
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!plans[i].owns_acts) continue;
    const int64_t step = parallel_quant ? 8 : jobs[i].n_tokens;
    for (int64_t t = 0; t < jobs[i].n_tokens; t += step)
      quant_tasks.push_back({static_cast<int32_t>(i), t, std::min(jobs[i].n_tokens, t + step)});
  }
  auto quantize = [&](int64_t qi, int) {
    const QuantTask& q = quant_tasks[qi];
    const MatmulJob& j = jobs[q.job];
    ActBuffers& b = buffers[q.job];
    plans[q.job].quantize(plans[q.job].kernel->act, j.x, j.x_stride, j.w.n_in, q.t_begin, q.t_end, b.qs.data(),
                         b.d.data(), b.s.data(), b.s32.data(), b.h16.data());
  };
  if (parallel_quant) {
    pool.parallel_for(static_cast<int64_t>(quant_tasks.size()), quantize);
  } else {
    for (size_t qi = 0; qi < quant_tasks.size(); ++qi) quantize(static_cast<int64_t>(qi), 0);
  }

  // Row chunks of all jobs, sized so the work balances across threads: cost of a row ~ its weight
  // bytes plus its multiply-adds.
  double total_cost = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!plans[i].active) continue;
    const MatmulJob& j = jobs[i];
    total_cost += static_cast<double>(j.w.n_out) * (static_cast<double>(j.w.row_bytes) + j.n_tokens * j.w.n_in / 8.0);
  }
  const double target = std::clamp(total_cost / (8.0 * pool.size()), 16384.0, 262144.0);
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!plans[i].active) continue;
    const MatmulJob& j = jobs[i];
    const double row_cost = static_cast<double>(j.w.row_bytes) + j.n_tokens * j.w.n_in / 8.0;
    const int64_t block = plans[i].kernel->row_block;
    int64_t rows = std::max<int64_t>(1, static_cast<int64_t>(target / row_cost));
    rows = std::max(block, (rows + block - 1) / block * block);
    for (int64_t r = 0; r < j.w.n_out; r += rows)
      tasks.push_back({static_cast<int32_t>(i), r, std::min(j.w.n_out, r + rows)});
  }

  auto run_task = [&](int64_t ti, int) {
    const Task& t = tasks[ti];
    const MatmulJob& j = jobs[t.job];
    MatmulArgs a;
    a.w = &j.w;
    a.x = &plans[t.job].acts;
    a.y = j.y;
    a.y_stride = j.y_stride;
    a.row_begin = t.row_begin;
    a.row_end = t.row_end;
    plans[t.job].kernel->run(a);
  };
  // Small calls run on the caller: waking the pool costs more than the few microseconds of work.
  constexpr double kInlineCost = 96.0 * 1024;
  if (tasks.size() == 1 || pool.size() == 1 || total_cost < kInlineCost) {
    for (size_t ti = 0; ti < tasks.size(); ++ti) run_task(static_cast<int64_t>(ti), 0);
  } else {
    pool.parallel_for(static_cast<int64_t>(tasks.size()), run_task);
  }
}

}  // namespace tessera::ops
