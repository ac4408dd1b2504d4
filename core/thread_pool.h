// A fixed pool of worker threads running one parallel region at a time (the caller is worker 0).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera {

class ThreadPool {
 public:
  // n_threads >= 1, including the calling thread. Between regions workers spin briefly before
  // sleeping (decode runs ~50 short regions per token; a futex wake-up each would cost ~5-10%).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index) once on every thread (index 0 = caller) and waits for all.
  void run(const std::function<void(int)>& fn);

  // Runs fn(task, thread_index) for task in [0, n_tasks), tasks handed out dynamically
  // (an atomic counter), so uneven tasks balance. Returns when all are done.
  void parallel_for(int64_t n_tasks, const std::function<void(int64_t, int)>& fn);

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;
};

}  // namespace tessera
