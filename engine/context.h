// An inference context: sequences and their KV cache blocks, and a stream of the model's backend with
// scratch sized once for a batch. eval() appends tokens to a sequence and runs the forward pass.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/kv/kv_cache.h"
#include "engine/model/model.h"

namespace tessera::engine {

struct Workspace;  // engine/model/forward.h

// Tokens appended to one sequence in a multi-sequence evaluation.
struct SeqInput {
  int seq = 0;
  std::span<const int32_t> tokens;
  bool all_logits = false;  // every token's logits row, else only the last token's
};

struct ContextOptions {
  int n_ctx = 4096;    // tokens one sequence may hold
  int kv_tokens = 0;   // KV capacity in tokens, shared by all sequences (0: n_ctx * n_seq_max)
  int n_threads = 2;
  int n_batch = 512;   // tokens per forward pass (longer inputs run in chunks)
  int n_seq_max = 1;
  bool prefix_cache = true;  // index full blocks so a later prompt with the same prefix adopts them
  bool print_plan = true;    // print the KV and scratch memory plan to stderr
};

class Context {   // sequences + their KV cache blocks + a backend stream and its scratch
 public:
  Context(std::shared_ptr<const Model> model, const ContextOptions& opts = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Appends tokens to sequence seq (positions continue) and runs the forward pass in chunks of
  // n_batch. Returns logits [rows][n_vocab]: every token's row if all_logits, else only the last
  // token's. The span stays valid until the next eval.
  std::span<const float> eval(std::span<const int32_t> tokens, bool all_logits = false, int seq = 0);

  // Evaluates tokens of several sequences in shared forward passes of up to n_batch tokens
  // (continuous batching: decode steps of many sequences, or prefill chunks next to them).
  // Returns the logits rows of all inputs in order ([rows][n_vocab]). All capacity checks happen
  // before anything runs, so a failed call changes no sequence.
  std::span<const float> eval_batch(std::span<const SeqInput> inputs);

  int n_past(int seq = 0) const;
  void clear(int seq = 0);             // releases the sequence's KV blocks (indexed ones stay cached)
  void truncate(int seq, int n_keep);  // keeps the first n_keep positions (prefix reuse)
  std::span<const int32_t> tokens(int seq = 0) const;  // ids at positions 0..n_past-1
  std::span<const int32_t> blocks(int seq = 0) const;  // its KV blocks in position order (for tests)
  // Prefix reuse: keeps the longest common prefix of what the sequence holds and `prompt`, then
  // adopts every following full block of `prompt` found in the prefix cache (at most prompt.size() - 1
  // tokens in all, so evaluating the rest still yields logits); returns the positions now held.
  // Evaluate prompt[returned:] next.
  int reuse_prefix(int seq, std::span<const int32_t> prompt);
  // dst (empty) shares every block of src: a fork; blocks are copied only when one side writes
  // into a shared block.
  void fork(int src, int dst);

  // KV blocks appending n tokens to seq would take (new blocks, plus a copy of a shared last block).
  int blocks_needed(int seq, int n_tokens) const;
  int n_free_blocks() const { return kv_cache_.n_free(); }  // free + cached (evictable)
  const KvCache& kv_cache() const { return kv_cache_; }

  const Model& model() const { return *model_; }
  std::shared_ptr<const Model> model_ptr() const { return model_; }
  const ContextOptions& options() const { return opts_; }
  int n_vocab() const { return static_cast<int>(model_->config().n_vocab); }
  uint64_t kv_bytes() const { return kv_->bytes(); }
  uint64_t scratch_bytes() const;

 private:
  SequenceKv& sequence(int seq);
  const SequenceKv& sequence(int seq) const;
  void make_last_block_writable(SequenceKv& s);  // copy-on-write / leave the index before writing into it
  void index_full_blocks(SequenceKv& s);         // puts the sequence's newly full blocks in the prefix index

  std::shared_ptr<const Model> model_;
  ContextOptions opts_;
  KvCache kv_cache_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<Stream> stream_;
  std::vector<SequenceKv> seqs_;
  std::unique_ptr<Workspace> ws_;
  std::vector<int32_t> pos_, out_rows_;       // [n_batch] of the batch being run
  std::vector<const int32_t*> block_table_;   // [n_batch]
  std::vector<float> logits_;  // [rows][n_vocab]
  // Flattened batch of eval_batch: per token its sequence, id, position and logits row (-1: none).
  struct Flat {
    int seq;
    int32_t token, pos, out_row;
  };
  std::vector<Flat> flat_;
  std::vector<int32_t> flat_tokens_;
  std::vector<int> new_past_;
  std::vector<int32_t> shared_writes_;  // shared partial last blocks the batch writes into
};

}  // namespace tessera::engine
