// Log-linear latency histogram shared by the poll thread (writer) and the JS thread (reader).
// 16 sub-buckets per power of two (relative error <= 6.25%); the exact maximum is kept aside.
// The bucket layout is mirrored by lib/fastpoll/histogram.ts, which computes the percentiles.
#pragma once
#include <atomic>
#include <cstdint>

namespace unsfp {

constexpr int kSubBucketBits = 4;
constexpr int kSubBuckets = 1 << kSubBucketBits;
constexpr int kHistogramBuckets = 640;

inline int BucketOf(uint64_t ns) {
  if (ns < static_cast<uint64_t>(kSubBuckets)) return static_cast<int>(ns);
  const int exponent = 63 - __builtin_clzll(ns);
  const int mantissa = static_cast<int>((ns >> (exponent - kSubBucketBits)) & (kSubBuckets - 1));
  const int index = kSubBuckets + (exponent - kSubBucketBits) * kSubBuckets + mantissa;
  return index < kHistogramBuckets ? index : kHistogramBuckets - 1;
}

struct Histogram {
  std::atomic<uint64_t> counts[kHistogramBuckets];
  std::atomic<uint64_t> total{0};
  std::atomic<uint64_t> max{0};
  std::atomic<uint64_t> sum{0};

  Histogram() { Reset(); }
  void Reset() {
    for (auto& c : counts) c.store(0, std::memory_order_relaxed);
    total.store(0, std::memory_order_relaxed);
    max.store(0, std::memory_order_relaxed);
    sum.store(0, std::memory_order_relaxed);
  }
  // Single writer (the poll thread): relaxed read-modify-write is enough.
  void Add(uint64_t ns) {
    counts[BucketOf(ns)].fetch_add(1, std::memory_order_relaxed);
    total.fetch_add(1, std::memory_order_relaxed);
    sum.fetch_add(ns, std::memory_order_relaxed);
    if (ns > max.load(std::memory_order_relaxed)) max.store(ns, std::memory_order_relaxed);
  }
};

}  // namespace unsfp
