// Context: sequences over the block KV cache, chunked evaluation, logits collection.
#include "engine/context.h"

#include <algorithm>
#include <cstdio>

#include "engine/core/error.h"
#include "engine/model/forward.h"

namespace tessera::engine {

Context::Context(std::shared_ptr<const Model> model, const ContextOptions& opts)
    : model_(std::move(model)),
      opts_(opts),
      pool_(std::max(1, opts.n_threads)),
      kv_(static_cast<int>(model_->config().n_layer), static_cast<int>(model_->config().n_head_kv),
          static_cast<int>(model_->config().head_dim), std::max(1, (opts.n_ctx + kKvBlock - 1) / kKvBlock)) {
  if (opts.n_ctx <= 0 || opts.n_batch <= 0 || opts.n_seq_max <= 0)
    throw_error("context: n_ctx ({}), n_batch ({}) and n_seq_max ({}) must be positive", opts.n_ctx, opts.n_batch,
                opts.n_seq_max);
  opts_.n_batch = std::min(opts.n_batch, opts.n_ctx);
  seqs_.resize(static_cast<size_t>(opts.n_seq_max));
  ws_ = std::make_unique<Workspace>(model_->config(), opts_.n_batch);
  logits_.reserve(static_cast<size_t>(model_->config().n_vocab));
  if (opts.print_plan)
    std::fprintf(stderr,
                 "tessera: memory plan: KV cache f16 %.1f MiB (%d tokens in %d blocks of %d, %lld layers), "
                 "scratch %.1f MiB (batch %d), %d threads\n",
                 static_cast<double>(kv_.bytes()) / (1 << 20), kv_.n_blocks() * kKvBlock, kv_.n_blocks(), kKvBlock,
                 static_cast<long long>(model_->config().n_layer), static_cast<double>(scratch_bytes()) / (1 << 20),
                 opts_.n_batch, pool_.size());
}

Context::~Context() = default;

uint64_t Context::scratch_bytes() const { return ws_->bytes(); }

SequenceKv& Context::sequence(int seq) {
  if (seq < 0 || seq >= static_cast<int>(seqs_.size()))
    throw_error("sequence {} is out of range (n_seq_max {})", seq, seqs_.size());
  return seqs_[static_cast<size_t>(seq)];
}
const SequenceKv& Context::sequence(int seq) const { return const_cast<Context*>(this)->sequence(seq); }

int Context::n_past(int seq) const { return sequence(seq).n_past; }

void Context::clear(int seq) { truncate(seq, 0); }

void Context::truncate(int seq, int n_keep) {
  SequenceKv& s = sequence(seq);
  n_keep = std::clamp(n_keep, 0, s.n_past);
  const size_t keep_blocks = static_cast<size_t>((n_keep + kKvBlock - 1) / kKvBlock);
  while (s.blocks.size() > keep_blocks) {
    kv_.free_block(s.blocks.back());
    s.blocks.pop_back();
  }
  s.n_past = n_keep;
}

std::span<const float> Context::eval(std::span<const int32_t> tokens, bool all_logits, int seq) {
  SequenceKv& s = sequence(seq);
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) throw_error("eval: no tokens");
  if (s.n_past + n > opts_.n_ctx)
    throw_error("context is full: {} tokens held + {} new > n_ctx {}", s.n_past, n, opts_.n_ctx);
  const int64_t V = model_->config().n_vocab;
  logits_.resize(static_cast<size_t>((all_logits ? n : 1) * V));

  Workspace& ws = *ws_;
  for (int64_t start = 0; start < n; start += opts_.n_batch) {
    const int64_t m = std::min<int64_t>(opts_.n_batch, n - start);
    while (static_cast<int64_t>(s.blocks.size()) * kKvBlock < s.n_past + m) s.blocks.push_back(kv_.alloc_block());
    for (int64_t i = 0; i < m; ++i) {
      ws.pos[i] = static_cast<int32_t>(s.n_past + i);
      ws.block_table[i] = s.blocks.data();
    }
    Batch b;
    b.n_tokens = m;
    b.tokens = tokens.data() + start;
    b.pos = ws.pos.data();
    b.block_table = ws.block_table.data();
    b.out_rows = ws.out_rows.data();
    if (all_logits) {
      for (int64_t i = 0; i < m; ++i) ws.out_rows[i] = static_cast<int32_t>(i);
      b.n_out = m;
      b.logits = logits_.data() + start * V;
    } else if (start + m == n) {
      ws.out_rows[0] = static_cast<int32_t>(m - 1);
      b.n_out = 1;
      b.logits = logits_.data();
    }
    forward(*model_, b, kv_, ws, pool_);
    s.n_past += static_cast<int>(m);
  }
  return {logits_.data(), logits_.size()};
}

}  // namespace tessera::engine
