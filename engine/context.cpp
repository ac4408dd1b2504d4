// Context: sequences over the block KV cache, chunked evaluation, logits collection.
#include "engine/context.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/error.h"
#include "engine/model/forward.h"

namespace tessera::engine {

namespace {
int kv_blocks(const ContextOptions& o) {
  if (o.n_ctx <= 0 || o.n_batch <= 0 || o.n_seq_max <= 0 || o.n_threads <= 0 || o.kv_tokens < 0)
    throw_error("context: n_ctx ({}), n_batch ({}), n_seq_max ({}) and n_threads ({}) must be positive, kv_tokens ({}) >= 0",
                o.n_ctx, o.n_batch, o.n_seq_max, o.n_threads, o.kv_tokens);
  const int64_t tokens = o.kv_tokens > 0 ? o.kv_tokens : int64_t{o.n_ctx} * o.n_seq_max;
  const int64_t blocks = (tokens + kKvBlock - 1) / kKvBlock;
  if (blocks > (int64_t{1} << 24)) throw_error("context: a KV cache of {} tokens is too large", tokens);
  return static_cast<int>(blocks);
}
}  // namespace

Context::Context(std::shared_ptr<const Model> model, const ContextOptions& opts)
    : model_(std::move(model)), opts_(opts), kv_cache_(kv_blocks(opts)) {
  opts_.n_batch = std::min(opts.n_batch, opts.n_ctx);
  const ModelConfig& c = model_->config();
  Backend& be = model_->backend();
  kv_ = be.create_kv(KvShape{static_cast<int>(c.n_layer), static_cast<int>(c.n_head_kv), static_cast<int>(c.head_dim),
                             kv_cache_.n_blocks()});
  stream_ = be.create_stream(c, StreamOptions{opts_.n_threads, opts_.n_batch, model_->kernel_policy(), model_->profile()});
  seqs_.resize(static_cast<size_t>(opts.n_seq_max));
  ws_ = std::make_unique<Workspace>(be, c, opts_.n_batch);
  pos_.resize(static_cast<size_t>(opts_.n_batch));
  out_rows_.resize(pos_.size());
  block_table_.resize(pos_.size());
  if (const char* p = std::getenv("TESSERA_PROFILE"); p && *p && std::string_view(p) != "0") ws_->prof.on = true;
  // --profile: the device's own per-dispatch report where the backend times its work, else the stages
  if (model_->profile() && be.name() != "vulkan") ws_->prof.on = true;
  logits_.reserve(static_cast<size_t>(model_->config().n_vocab));
  if (opts.print_plan)
    std::fprintf(stderr,
                 "tessera: memory plan: KV cache f16 %.1f MiB (%d tokens in %d blocks of %d, %lld layers), "
                 "scratch %.1f MiB (batch %d), backend %s, %d threads\n",
                 static_cast<double>(kv_->bytes()) / (1 << 20), kv_cache_.n_blocks() * kKvBlock, kv_cache_.n_blocks(), kKvBlock,
                 static_cast<long long>(c.n_layer), static_cast<double>(scratch_bytes()) / (1 << 20), opts_.n_batch,
                 be.name().c_str(), opts_.n_threads);
}

Context::~Context() {
  if (ws_ && ws_->prof.on) ws_->prof.print();
  if (stream_ && model_->profile()) {
    const std::string r = stream_->profile_report(model_->config().n_layer, model_->active_bytes_per_token());
    if (!r.empty()) std::fputs(r.c_str(), stderr);
  }
}

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
    kv_cache_.release(s.blocks.back());
    s.blocks.pop_back();
  }
  s.keys.resize(std::min(s.keys.size(), static_cast<size_t>(n_keep / kKvBlock)));
  s.n_past = n_keep;
  s.tokens.resize(static_cast<size_t>(n_keep));
}

std::span<const int32_t> Context::tokens(int seq) const { return sequence(seq).tokens; }
std::span<const int32_t> Context::blocks(int seq) const { return sequence(seq).blocks; }

int Context::reuse_prefix(int seq, std::span<const int32_t> prompt) {
  SequenceKv& s = sequence(seq);
  const size_t limit = prompt.empty() ? 0 : prompt.size() - 1;
  size_t n = 0;
  while (n < std::min(s.tokens.size(), limit) && s.tokens[n] == prompt[n]) ++n;
  truncate(seq, static_cast<int>(n));
  if (!opts_.prefix_cache) return s.n_past;
  // Cached full blocks of the prompt beyond the sequence's last full block: adopt them when they
  // reach past what the sequence already holds.
  const size_t base = n / kKvBlock;
  std::vector<int32_t> found;
  std::vector<uint64_t> keys;
  uint64_t parent = base > 0 ? s.keys[base - 1] : 0;
  for (size_t i = base; (i + 1) * kKvBlock <= limit; ++i) {
    const std::span<const int32_t> toks = prompt.subspan(i * kKvBlock, kKvBlock);
    const uint64_t key = KvCache::chain(parent, toks);
    const int b = kv_cache_.lookup(key, toks);
    if (b < 0) break;
    found.push_back(b);
    keys.push_back(key);
    parent = key;
  }
  if ((base + found.size()) * kKvBlock <= n) {  // nothing beyond what the sequence holds
    for (int b : found) kv_cache_.release(b);
    return s.n_past;
  }
  truncate(seq, static_cast<int>(base * kKvBlock));
  for (size_t j = 0; j < found.size(); ++j) {
    s.blocks.push_back(found[j]);
    s.keys.push_back(keys[j]);
    const auto toks = prompt.subspan((base + j) * kKvBlock, kKvBlock);
    s.tokens.insert(s.tokens.end(), toks.begin(), toks.end());
  }
  s.n_past = static_cast<int>(s.tokens.size());
  return s.n_past;
}

void Context::fork(int src, int dst) {
  if (src == dst) throw_error("fork: source and destination are both sequence {}", src);
  const SequenceKv& a = sequence(src);
  SequenceKv& b = sequence(dst);
  if (b.n_past != 0) throw_error("fork: sequence {} is not empty", dst);
  for (int blk : a.blocks) kv_cache_.retain(blk);
  b = a;
}

int Context::blocks_needed(int seq, int n_tokens) const {
  const SequenceKv& s = sequence(seq);
  const int64_t want = (int64_t{s.n_past} + n_tokens + kKvBlock - 1) / kKvBlock;
  int64_t n = std::max<int64_t>(0, want - static_cast<int64_t>(s.blocks.size()));
  if (n_tokens > 0 && s.n_past % kKvBlock != 0 && kv_cache_.refcount(s.blocks.back()) > 1) ++n;  // copy-on-write
  return static_cast<int>(n);
}

void Context::make_last_block_writable(SequenceKv& s) {
  if (s.n_past % kKvBlock == 0) return;  // the next token starts a new block
  const int b = s.blocks.back();
  if (kv_cache_.refcount(b) > 1) {  // shared: copy it
    const int nb = kv_cache_.alloc();
    if (nb < 0) throw_error("KV cache is full: no block for a copy-on-write");
    stream_->kv_copy(*kv_, nb, b);
    kv_cache_.release(b);
    s.blocks.back() = nb;
  } else if (kv_cache_.indexed(b)) {  // ours alone, but indexed: it is about to change
    kv_cache_.unpublish(b);
  }
}

void Context::index_full_blocks(SequenceKv& s) {
  while (s.keys.size() < static_cast<size_t>(s.n_past / kKvBlock)) {
    const size_t i = s.keys.size();
    const std::span<const int32_t> toks(s.tokens.data() + i * kKvBlock, kKvBlock);
    const uint64_t key = KvCache::chain(i > 0 ? s.keys[i - 1] : 0, toks);
    s.keys.push_back(key);
    if (opts_.prefix_cache) kv_cache_.publish(s.blocks[i], key, toks);
  }
}

std::span<const float> Context::eval(std::span<const int32_t> tokens, bool all_logits, int seq) {
  const SeqInput in{seq, tokens, all_logits};
  return eval_batch(std::span<const SeqInput>(&in, 1));
}

std::span<const float> Context::eval_batch(std::span<const SeqInput> inputs) {
  const int64_t V = model_->config().n_vocab;
  // Positions after this call and the blocks that needs, checked before anything changes.
  new_past_.resize(seqs_.size());
  for (size_t i = 0; i < seqs_.size(); ++i) new_past_[i] = seqs_[i].n_past;
  int64_t n_total = 0, n_rows = 0, need = 0;
  for (const SeqInput& in : inputs) {
    sequence(in.seq);  // range check
    if (in.tokens.empty()) throw_error("eval: no tokens for sequence {}", in.seq);
    for (int32_t id : in.tokens)
      if (id < 0 || id >= V) throw_error("token id {} is out of range (vocabulary of {})", id, V);
    new_past_[static_cast<size_t>(in.seq)] += static_cast<int>(in.tokens.size());
    n_total += static_cast<int64_t>(in.tokens.size());
    n_rows += in.all_logits ? static_cast<int64_t>(in.tokens.size()) : 1;
  }
  if (inputs.empty()) throw_error("eval: no tokens");
  shared_writes_.clear();
  for (size_t i = 0; i < seqs_.size(); ++i) {
    if (new_past_[i] > opts_.n_ctx)
      throw_error("context is full: sequence {} would hold {} tokens > n_ctx {}", i, new_past_[i], opts_.n_ctx);
    const SequenceKv& s = seqs_[i];
    if (new_past_[i] == s.n_past) continue;
    need += (new_past_[i] + kKvBlock - 1) / kKvBlock - static_cast<int64_t>(s.blocks.size());
    if (s.n_past % kKvBlock != 0 && kv_cache_.refcount(s.blocks.back()) > 1) shared_writes_.push_back(s.blocks.back());
  }
  // Copy-on-write: of k sequences writing into a block held r times, min(k, r - 1) copy it (the last
  // holder writes in place).
  std::sort(shared_writes_.begin(), shared_writes_.end());
  for (size_t i = 0, j = 0; i < shared_writes_.size(); i = j) {
    while (j < shared_writes_.size() && shared_writes_[j] == shared_writes_[i]) ++j;
    need += std::min<int64_t>(static_cast<int64_t>(j - i), kv_cache_.refcount(shared_writes_[i]) - 1);
  }
  if (need > kv_cache_.n_free())
    throw_error("KV cache is full: {} more blocks of {} tokens needed, {} free", need, kKvBlock,
                kv_cache_.n_free());
  for (size_t i = 0; i < seqs_.size(); ++i) {
    SequenceKv& s = seqs_[i];
    if (new_past_[i] == s.n_past) continue;
    make_last_block_writable(s);
    while (static_cast<int64_t>(s.blocks.size()) * kKvBlock < new_past_[i]) s.blocks.push_back(kv_cache_.alloc());
  }

  // Flatten: each token with its sequence, position and logits row.
  flat_.clear();
  flat_tokens_.clear();
  int32_t row = 0;
  for (size_t i = 0; i < seqs_.size(); ++i) new_past_[i] = seqs_[i].n_past;
  for (const SeqInput& in : inputs) {
    const size_t n = in.tokens.size();
    for (size_t j = 0; j < n; ++j) {
      const bool want = in.all_logits || j + 1 == n;
      flat_.push_back({in.seq, in.tokens[j], new_past_[static_cast<size_t>(in.seq)]++, want ? row++ : -1});
      flat_tokens_.push_back(in.tokens[j]);
    }
  }
  logits_.resize(static_cast<size_t>(n_rows * V));

  Workspace& ws = *ws_;
  for (int64_t start = 0; start < n_total; start += opts_.n_batch) {
    const int64_t m = std::min<int64_t>(opts_.n_batch, n_total - start);
    Batch b;
    b.n_tokens = m;
    b.tokens = flat_tokens_.data() + start;
    b.pos = pos_.data();
    b.block_table = block_table_.data();
    b.out_rows = out_rows_.data();
    for (int64_t i = 0; i < m; ++i) {
      const Flat& f = flat_[static_cast<size_t>(start + i)];
      pos_[i] = f.pos;
      block_table_[i] = seqs_[static_cast<size_t>(f.seq)].blocks.data();
      if (f.out_row >= 0) {
        if (b.n_out == 0) b.logits = logits_.data() + static_cast<int64_t>(f.out_row) * V;  // rows are consecutive
        out_rows_[b.n_out++] = static_cast<int32_t>(i);
      }
    }
    forward(*model_, b, *kv_, ws, *stream_);
    for (int64_t i = 0; i < m; ++i) {
      const Flat& f = flat_[static_cast<size_t>(start + i)];
      SequenceKv& sq = seqs_[static_cast<size_t>(f.seq)];
      sq.n_past += 1;
      sq.tokens.push_back(f.token);
    }
    for (const SeqInput& in : inputs) index_full_blocks(seqs_[static_cast<size_t>(in.seq)]);
  }
  return {logits_.data(), logits_.size()};
}

}  // namespace tessera::engine
