// The poll thread: fixed-period Modbus TCP polling on absolute CLOCK_MONOTONIC deadlines, change
// detection with per-register deadbands, trip rules, and hand-over to JS through bounded rings.
// Knows nothing about N-API: addon.cc adapts it.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "histogram.h"
#include "modbus_tcp.h"
#include "spsc_ring.h"

namespace unsfp {

struct Block {
  uint8_t fc;  // 1..4
  uint16_t address;
  uint16_t quantity;
  std::vector<double> deadband;  // per item, raw units; a change is reported when |v - last| > deadband
  std::vector<uint8_t> is_signed;  // per item: compare as int16
};

struct TripRule {
  int block;
  int offset;
  bool above;  // true: value > limit; false: value < limit
  double limit;
  int cycles;  // consecutive cycles
  uint8_t write_fc;  // 5 or 6
  uint16_t write_address;
  uint16_t write_value;
};

struct Realtime {
  int priority = 0;  // SCHED_FIFO priority, 0 = stay SCHED_OTHER
  int cpu = -1;      // CPU to pin to, -1 = any
  bool lock_memory = false;
  int64_t spin_ns = 0;  // sleep to (deadline − spin), then busy-wait: hides the VM's wake-up latency, costs CPU
};

struct PollerConfig {
  std::string host;
  int port = 502;
  uint8_t unit_id = 1;
  int64_t period_ns = 1000000;
  int timeout_ms = 100;
  int connect_timeout_ms = 1000;
  int reconnect_min_ms = 100;
  int reconnect_max_ms = 5000;
  size_t ring_capacity = 65536;
  std::vector<Block> blocks;
  std::vector<TripRule> trips;
  Realtime realtime;
};

struct Change {
  uint64_t cycle;
  double time_ms;  // CLOCK_REALTIME, ms since the epoch
  uint16_t block;
  uint16_t offset;
  uint16_t value;
};

enum class EventType : uint8_t { kConnected, kDisconnected, kReadError, kReadRecovered, kTrip, kWrite };

struct Event {
  EventType type;
  uint64_t cycle;
  double time_ms;
  int32_t block;     // kReadError/kReadRecovered: block; kTrip: rule index; kWrite: request id
  int32_t code;      // Modbus exception code, or 0
  char kind[16];     // "timeout", "exception", "garbage", "closed", "refused", "ok" ...
  char message[112];
  // kTrip: the three timestamps (ms since the epoch) and cycles
  double crossing_ms, sent_ms, acked_ms;
  uint64_t crossing_cycle;
  int32_t value;
};

struct WriteRequest {
  int32_t id;
  uint8_t fc;
  uint16_t address;
  uint16_t quantity;
  uint16_t values[123];
};

struct RealtimeReport {
  std::string policy = "other";
  int priority = 0;
  int cpu = -1;
  bool memory_locked = false;
  std::vector<std::string> notes;
};

class Poller {
 public:
  // `notify` is called from the poll thread when new items are in the rings and no notification
  // is pending; it must not block (addon.cc: a non-blocking ThreadSafeFunction call).
  Poller(PollerConfig config, std::function<void()> notify);
  ~Poller();
  void Start();
  void Stop();  // joins the thread; idempotent
  bool running() const { return running_.load(); }
  // Queue a write for the poll thread (bounded); false when the queue is full.
  bool QueueWrite(const WriteRequest& request);
  // Called by the JS thread after it drained the rings: allow the next notification.
  void NotificationDone() { notify_pending_.store(false); }

  SpscRing<Change> changes;
  SpscRing<Event> events;
  Histogram lateness;
  // Lateness of the deadlines an overrun skipped, each until the next cycle actually ran.
  Histogram missed_lateness;
  Histogram cycle_time;
  std::atomic<uint64_t> cycles{0}, overruns{0}, missed_deadlines{0}, dropped_changes{0}, dropped_events{0},
      reads{0}, read_errors{0}, connects{0}, trips{0}, writes{0}, write_errors{0}, notifications{0};
  std::atomic<bool> connected{false};
  // Last overrun timestamps (ms since the epoch), a ring of kOverrunLog entries.
  static constexpr int kOverrunLog = 64;
  std::atomic<double> overrun_times[kOverrunLog];
  RealtimeReport realtime_report() {
    std::lock_guard<std::mutex> lock(report_mutex_);
    return realtime_report_;
  }
  const PollerConfig& config() const { return config_; }

 private:
  void Run();
  void ApplyRealtime();
  void PollCycle(uint64_t cycle);
  void EnsureConnected(uint64_t cycle);
  void LinkAnswered(uint64_t cycle);
  void Disconnect(uint64_t cycle, const char* kind, const std::string& why);
  void ReadBlock(uint64_t cycle, size_t index);
  void EvaluateTrips(uint64_t cycle, size_t block_index, double now_ms);
  void ProcessWrites(uint64_t cycle);
  void PushEvent(Event& e);
  void Notify();

  PollerConfig config_;
  std::function<void()> notify_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<bool> notify_pending_{false};
  ModbusTcpClient client_;
  int stop_fd_ = -1;  // eventfd: readable once stop() was called
  int64_t reconnect_at_ns_ = 0;
  int reconnect_delay_ms_ = 0;
  bool outage_reported_ = false;
  bool link_verified_ = false;
  // Per block: values as last reported to JS (valid[i] == false → report on the next read).
  std::vector<std::vector<uint16_t>> reported_;
  std::vector<std::vector<uint8_t>> reported_valid_;
  std::vector<std::vector<uint16_t>> current_;
  std::vector<uint8_t> block_failed_;
  // Trip rule state
  std::vector<int> trip_streak_;
  std::vector<uint64_t> trip_first_cycle_;
  std::vector<double> trip_first_ms_;
  std::vector<uint8_t> trip_latched_;
  // Writes from JS
  std::mutex write_mutex_;
  std::vector<WriteRequest> write_queue_;
  std::mutex report_mutex_;
  RealtimeReport realtime_report_;
};

double RealtimeMs();

}  // namespace unsfp
