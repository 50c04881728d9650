// Bounded single-producer/single-consumer ring: the poll thread pushes, the JS thread pops.
// Overflow policy: push() refuses the newest item and the caller counts the drop.
#pragma once
#include <atomic>
#include <cstddef>
#include <vector>

namespace unsfp {

template <typename T>
class SpscRing {
 public:
  explicit SpscRing(size_t capacity) : slots_(capacity + 1) {}
  bool Push(const T& item) {
    const size_t head = head_.load(std::memory_order_relaxed);
    const size_t next = (head + 1) % slots_.size();
    if (next == tail_.load(std::memory_order_acquire)) return false;
    slots_[head] = item;
    head_.store(next, std::memory_order_release);
    return true;
  }
  bool Pop(T* out) {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail == head_.load(std::memory_order_acquire)) return false;
    *out = slots_[tail];
    tail_.store((tail + 1) % slots_.size(), std::memory_order_release);
    return true;
  }
  bool Empty() const { return tail_.load(std::memory_order_acquire) == head_.load(std::memory_order_acquire); }
  size_t Capacity() const { return slots_.size() - 1; }

 private:
  std::vector<T> slots_;
  std::atomic<size_t> head_{0};
  std::atomic<size_t> tail_{0};
};

}  // namespace unsfp
