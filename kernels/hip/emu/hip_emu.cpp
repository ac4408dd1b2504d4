// The emulator's scheduler: one fiber per work-item of a block, run round-robin until each finishes or
// waits at a barrier; a barrier opens when every live work-item it concerns waits at it (finished
// work-items count as arrived, as exited waves do on AMD hardware). Anything else (some lanes of a wave
// at __syncthreads, others at a shuffle) is a divergent barrier: an error naming the kernel.
#include "kernels/hip/emu/hip_emu.h"

#include "gguf/half.h"

#include <array>
#include <atomic>
#include <boost/context/fiber.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>
#include <exception>
#include <map>
#include <stdexcept>
#include <vector>

namespace hip_emu {

thread_local ItemCtx* g_item = nullptr;
thread_local BlockCtx* g_block = nullptr;

namespace {

namespace ctx = boost::context;

enum class Wait : uint8_t { None, Block, Wave, Done };

struct Item {
  ItemCtx c;
  Wait wait = Wait::None;
  uint32_t exchanges = 0;  // wave exchanges so far (all lanes of a wave make the same ones)
  ctx::fiber fiber;  // the work-item (resumed by the scheduler)
  ctx::fiber sink;   // the scheduler (resumed by the work-item to wait)
};

struct WaveState {
  alignas(16) std::array<uint8_t, kWave * kSlot> slots{};
  // lanes that published at an exchange, by its parity: each exchange clears the previous one's mask,
  // which every lane has finished reading (its second barrier), and nobody sets before the next
  uint32_t mask[2] = {0, 0};
};

struct Block {
  BlockCtx ctx;
  std::vector<Item> items;
  std::vector<WaveState> waves;
  std::exception_ptr error;
};

thread_local Block* g_run = nullptr;
thread_local Item* g_cur = nullptr;

std::atomic<uint64_t> g_launches{0}, g_read{0}, g_written{0};

// Gives control back to the scheduler until the barrier this item waits at opens.
void wait_at(Wait w) {
  Item* it = g_cur;
  it->wait = w;
  it->sink = std::move(it->sink).resume();
  g_cur = it;
  g_item = &it->c;
}

Item& current() {
  if (!g_cur) throw std::logic_error("hip_emu: a device function was called outside a kernel launch");
  return *g_cur;
}

// Opens the barriers every live work-item they concern waits at; false when none could open.
bool open_barriers(Block& b) {
  bool opened = false;
  const size_t n = b.items.size();
  for (size_t w = 0; w * kWave < n; ++w) {
    bool all = true, any = false;
    for (size_t i = w * kWave; i < std::min(n, (w + 1) * kWave); ++i) {
      any |= b.items[i].wait == Wait::Wave;
      all &= b.items[i].wait == Wait::Wave || b.items[i].wait == Wait::Done;
    }
    if (any && all) {
      for (size_t i = w * kWave; i < std::min(n, (w + 1) * kWave); ++i)
        if (b.items[i].wait == Wait::Wave) b.items[i].wait = Wait::None;
      opened = true;
    }
  }
  if (opened) return true;
  bool all = true, any = false;
  for (const Item& it : b.items) {
    any |= it.wait == Wait::Block;
    all &= it.wait == Wait::Block || it.wait == Wait::Done;
  }
  if (!any || !all) return false;
  for (Item& it : b.items)
    if (it.wait == Wait::Block) it.wait = Wait::None;
  return true;
}

ctx::pooled_fixedsize_stack& stacks() {
  thread_local ctx::pooled_fixedsize_stack pool(64 * 1024);
  return pool;
}

void run_block(Block& b, const std::function<void()>& body, const std::string& name) {
  const dim3 d = b.ctx.dim;
  const uint32_t n = d.x * d.y * d.z;
  b.items.clear();
  b.items.resize(n);
  b.waves.assign((n + kWave - 1) / kWave, WaveState{});
  b.error = nullptr;
  for (uint32_t i = 0; i < n; ++i) {
    Item& it = b.items[i];
    it.c.linear = i;
    it.c.tid = {i % d.x, (i / d.x) % d.y, i / (d.x * d.y)};
    it.c.lane = i % kWave;
    it.c.wave = i / kWave;
    it.fiber = ctx::fiber(std::allocator_arg, stacks(), [&b, &it, &body](ctx::fiber&& sink) {
      it.sink = std::move(sink);
      try {
        body();
      } catch (const ctx::detail::forced_unwind&) {
        throw;  // the fiber is being destroyed unfinished: let Boost unwind it
      } catch (...) {
        if (!b.error) b.error = std::current_exception();
      }
      it.wait = Wait::Done;
      return std::move(it.sink);
    });
  }
  size_t live = n;
  while (live > 0) {
    for (Item& it : b.items) {
      if (it.wait != Wait::None) continue;
      g_cur = &it;
      g_item = &it.c;
      it.fiber = std::move(it.fiber).resume();
      if (it.wait == Wait::Done) --live;
    }
    g_cur = nullptr;
    g_item = nullptr;
    if (b.error) break;
    if (live > 0 && !open_barriers(b))
      b.error = std::make_exception_ptr(std::runtime_error(
          "hip_emu: kernel " + name + ": divergent barrier (work-items wait at different barriers)"));
    if (b.error) break;
  }
  b.items.clear();  // unfinished fibers (after an error) are unwound here
  if (b.error) std::rethrow_exception(b.error);
}

}  // namespace

void syncthreads() {
  current();
  wait_at(Wait::Block);
}

const uint8_t* exchange_begin(const void* mine, size_t bytes, uint32_t* mask) {
  Item& it = current();
  if (bytes > kSlot) throw std::logic_error("hip_emu: a wave exchange of more than 64 bytes per lane");
  WaveState& w = g_run->waves[it.c.wave];
  const uint32_t k = it.exchanges++ & 1u;
  std::memcpy(w.slots.data() + it.c.lane * kSlot, mine, bytes);
  w.mask[k] |= 1u << it.c.lane;
  w.mask[k ^ 1u] = 0;
  wait_at(Wait::Wave);
  if (mask) *mask = w.mask[k];
  return w.slots.data();
}

void exchange_done() {
  current();
  wait_at(Wait::Wave);  // everyone has read: the slots may be reused
}

void launch(const Launch& l, const std::function<void()>& body) {
  if (l.block.x * l.block.y * l.block.z == 0 || l.block.x * l.block.y * l.block.z > 1024)
    throw std::invalid_argument("hip_emu: kernel " + l.name + ": block of " + std::to_string(l.block.x * l.block.y * l.block.z) +
                                " work-items (1..1024)");
  g_launches.fetch_add(1, std::memory_order_relaxed);
  g_read.fetch_add(l.bytes_read, std::memory_order_relaxed);
  g_written.fetch_add(l.bytes_written, std::memory_order_relaxed);
  Block b;
  std::vector<uint8_t> dyn(l.dynamic_shared + 16);
  b.ctx.dim = l.block;
  b.ctx.grid = l.grid;
  b.ctx.dynamic_shared = dyn.data();
  Block* outer_run = g_run;
  BlockCtx* outer_block = g_block;
  g_run = &b;
  g_block = &b.ctx;
  try {
    for (uint32_t z = 0; z < l.grid.z; ++z)
      for (uint32_t y = 0; y < l.grid.y; ++y)
        for (uint32_t x = 0; x < l.grid.x; ++x) {
          b.ctx.idx = {x, y, z};
          run_block(b, body, l.name);
        }
  } catch (...) {
    g_run = outer_run;
    g_block = outer_block;
    throw;
  }
  g_run = outer_run;
  g_block = outer_block;
}

namespace {
std::map<std::string, KernelFn>& kernel_table() {
  static std::map<std::string, KernelFn> t;
  return t;
}
}  // namespace

Registrar::Registrar(const char* name, KernelFn fn) { kernel_table()[name] = fn; }

KernelFn find_kernel(const std::string& name) {
  const auto it = kernel_table().find(name);
  return it == kernel_table().end() ? nullptr : it->second;
}

Stats stats() { return {g_launches.load(), g_read.load(), g_written.load()}; }
void reset_stats() {
  g_launches = 0;
  g_read = 0;
  g_written = 0;
}

int sudot4(bool a_signed, int a, bool b_signed, int b, int c, bool clamp) {
  int64_t s = c;
  for (int i = 0; i < 4; ++i) {
    const uint32_t ua = static_cast<uint32_t>(a) >> (8 * i) & 0xff, ub = static_cast<uint32_t>(b) >> (8 * i) & 0xff;
    const int64_t va = a_signed ? static_cast<int8_t>(ua) : static_cast<int64_t>(ua);
    const int64_t vb = b_signed ? static_cast<int8_t>(ub) : static_cast<int64_t>(ub);
    s += va * vb;
  }
  if (clamp) return static_cast<int>(std::min<int64_t>(std::max<int64_t>(s, INT32_MIN), INT32_MAX));
  return static_cast<int>(static_cast<uint32_t>(static_cast<uint64_t>(s)));
}

// Operand and result layouts of V_WMMA_F32_16X16X16_F16 in wave32 on RDNA 4 (gfx12), after the RDNA 4
// ISA reference guide ("Wave Matrix Multiply Accumulate", dense 16x16 layouts) and AMD GPUOpen's
// "Using the Matrix Cores of AMD RDNA 4 architecture GPUs" (which notes the layout changed from RDNA 3:
// no replicated halves, 8 f16 per lane):
//   A (16x16, M x K):  lane l holds row m = l % 16, a[i] = A[m][8 * (l / 16) + i]
//   B (16x16, K x N):  lane l holds column n = l % 16, b[i] = B[8 * (l / 16) + i][n]
//   C, D (f32):        lane l holds column n = l % 16, c[i] = C[8 * (l / 16) + i][n]
// Re-checked (issue 13, session 5; the ISA guide's figure itself was not in the search index): ROCm
// composable_kernel's ck_tile WMMA traits give gfx12 C/D as 2 lane groups x 8 consecutive rows per lane
// (kCMLane 2, kCM1PerLane 8: row 8 (l / 16) + i) against gfx11's interleaved rows (kCM0PerLane 8:
// row 2 i + l / 16, the RDNA 3 layout Modular's Mojo docs describe), 8 f16 per lane for A and B with
// lane l % 16 the row of A / column of B; HIP GEMMs for gfx12 found by search load A/B fragments as 8
// consecutive k at k offset 8 (l / 16) and store D as column l % 16, rows 8 (l / 16) + i. How k is
// split between the two lane groups inside A and B cannot change a product as long as A and B use the
// same split (ck_tile permutes it), so kernels must only load both alike; the M/N/D placement above
// is what the results depend on.
// The products of f16 values are exact in f32; they are summed in k order onto C (the hardware's
// internal order is not specified; tests compare with a tolerance).
float8 wmma_f32_16x16x16_f16_w32_gfx12(half8 a, half8 b, float8 c) {
  struct {
    half8 a, b;
  } mine{a, b};
  static_assert(sizeof(mine) <= kSlot);
  const int lane = static_cast<int>(current().c.lane);
  uint32_t live = 0;
  const uint8_t* s = exchange_begin(&mine, sizeof mine, &live);
  if (live != 0xffffffffu) {
    exchange_done();
    throw std::logic_error("hip_emu: WMMA needs all 32 lanes of the wave");
  }
  // The 8 rows of A this lane's results need and its column of B, as float (each f16 converted once,
  // with the inline bit conversion: the compiler's _Float16 -> float is a library call without F16C).
  auto to_f = [](half8 h, float* out) {
    uint16_t u[8];
    std::memcpy(u, &h, sizeof u);
    for (int i = 0; i < 8; ++i) out[i] = tessera::fp16_to_fp32(u[i]);
  };
  const int n = lane % 16, m0 = 8 * (lane / 16);
  float rb[16], ra[16];
  to_f(slot_value<half8>(s + sizeof(half8), n), rb);
  to_f(slot_value<half8>(s + sizeof(half8), n + 16), rb + 8);
  float8 d;
  for (int i = 0; i < 8; ++i) {
    const int m = m0 + i;
    to_f(slot_value<half8>(s, m), ra);
    to_f(slot_value<half8>(s, m + 16), ra + 8);
    float acc = c[i];
    for (int k = 0; k < 16; ++k) acc += ra[k] * rb[k];
    d[i] = acc;
  }
  exchange_done();
  return d;
}

}  // namespace hip_emu
