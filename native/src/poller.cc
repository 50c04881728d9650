#include "poller.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>

#include <algorithm>
#include <cmath>

namespace unsfp {

namespace {
constexpr size_t kWriteQueueLimit = 64;
constexpr int64_t kSleepSliceNs = 50000000;  // stop() is seen within 50 ms even on long periods

void CopyText(char* to, size_t size, const std::string& from) {
  const size_t n = std::min(size - 1, from.size());
  memcpy(to, from.data(), n);
  to[n] = 0;
}

timespec ToTimespec(int64_t ns) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / 1000000000LL);
  ts.tv_nsec = static_cast<long>(ns % 1000000000LL);
  return ts;
}

double AsNumber(uint16_t raw, bool is_signed) {
  return is_signed ? static_cast<double>(static_cast<int16_t>(raw)) : static_cast<double>(raw);
}
}  // namespace

double RealtimeMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6;
}

Poller::Poller(PollerConfig config, std::function<void()> notify)
    : changes(config.ring_capacity), events(1024), config_(std::move(config)), notify_(std::move(notify)) {
  for (auto& t : overrun_times) t.store(0);
  for (const Block& b : config_.blocks) {
    reported_.emplace_back(b.quantity, 0);
    reported_valid_.emplace_back(b.quantity, 0);
    current_.emplace_back(b.quantity, 0);
  }
  block_failed_.assign(config_.blocks.size(), 0);
  trip_streak_.assign(config_.trips.size(), 0);
  trip_first_cycle_.assign(config_.trips.size(), 0);
  trip_first_ms_.assign(config_.trips.size(), 0);
  trip_latched_.assign(config_.trips.size(), 0);
  write_queue_.reserve(kWriteQueueLimit);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  client_.set_cancel_fd(stop_fd_);
}

Poller::~Poller() {
  Stop();
  if (stop_fd_ >= 0) close(stop_fd_);
}

void Poller::Start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] { Run(); });
}

void Poller::Stop() {
  running_.store(false);
  // End a transaction or connect in progress at once instead of waiting for its timeout.
  const uint64_t one = 1;
  if (stop_fd_ >= 0 && write(stop_fd_, &one, sizeof one) < 0) {}
  if (thread_.joinable()) thread_.join();
  client_.Close();
}

bool Poller::QueueWrite(const WriteRequest& request) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  if (write_queue_.size() >= kWriteQueueLimit) return false;
  write_queue_.push_back(request);
  return true;
}

void Poller::Notify() {
  if (notify_pending_.exchange(true)) return;  // JS has not drained yet: items coalesce in the rings
  notifications.fetch_add(1, std::memory_order_relaxed);
  notify_();
}

void Poller::PushEvent(Event& e) {
  if (!running_.load(std::memory_order_relaxed)) return;  // failures caused by stop() are not news
  if (!events.Push(e)) dropped_events.fetch_add(1, std::memory_order_relaxed);
}

void Poller::ApplyRealtime() {
  RealtimeReport report;
  const Realtime& rt = config_.realtime;
  // Timer slack (default 50 µs for normal threads) would be added to every wake-up: ask for 1 ns.
  if (prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) != 0) report.notes.push_back(std::string("timer slack: ") + strerror(errno));
  if (rt.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(rt.cpu, &set);
    const int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (rc == 0) report.cpu = rt.cpu;
    else report.notes.push_back(std::string("cpu ") + std::to_string(rt.cpu) + ": " + strerror(rc));
  }
  if (rt.priority > 0) {
    sched_param param{};
    param.sched_priority = std::min(rt.priority, sched_get_priority_max(SCHED_FIFO));
    const int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
    if (rc == 0) { report.policy = "fifo"; report.priority = param.sched_priority; }
    else report.notes.push_back(std::string("SCHED_FIFO ") + std::to_string(rt.priority) + ": " + strerror(rc));
  }
  if (rt.lock_memory) {
    // Locks the whole process (mlockall has no per-thread form): page faults cannot stall a cycle.
    if (mlockall(MCL_CURRENT | MCL_FUTURE) == 0) report.memory_locked = true;
    else report.notes.push_back(std::string("mlockall: ") + strerror(errno));
  }
  std::lock_guard<std::mutex> lock(report_mutex_);
  realtime_report_ = report;
}

void Poller::Run() {
  ApplyRealtime();
  int64_t deadline = MonotonicNs() + config_.period_ns;
  uint64_t cycle = 0;
  int64_t skipped_from = 0, skipped = 0;  // the deadlines the last overrun skipped
  while (running_.load(std::memory_order_relaxed)) {
    // Sleep to the absolute deadline (POSIX clock_nanosleep, TIMER_ABSTIME): no drift, and time
    // spent in the previous cycle does not shift the next one.
    const int64_t wake_at = deadline - config_.realtime.spin_ns;
    for (;;) {
      const int64_t now = MonotonicNs();
      if (now >= wake_at || !running_.load(std::memory_order_relaxed)) break;
      const timespec until = ToTimespec(std::min(wake_at, now + kSleepSliceNs));
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) {}
    }
    while (running_.load(std::memory_order_relaxed) && MonotonicNs() < deadline) {}  // the optional spin (spin_ns > 0) up to the deadline
    if (!running_.load(std::memory_order_relaxed)) break;
    const int64_t woke = MonotonicNs();
    lateness.Add(static_cast<uint64_t>(woke - deadline));
    // A skipped deadline is a late cycle: it ran now, this much after its own deadline.
    for (int64_t j = 0; j < skipped; j++) missed_lateness.Add(static_cast<uint64_t>(woke - (skipped_from + j * config_.period_ns)));
    skipped = 0;
    cycle++;
    cycles.store(cycle, std::memory_order_relaxed);
    PollCycle(cycle);
    const int64_t done = MonotonicNs();
    cycle_time.Add(static_cast<uint64_t>(done - woke));
    deadline += config_.period_ns;
    if (done > deadline) {
      // Overrun: the cycle ended after the next deadline. Count it with its timestamp, and skip the
      // deadlines already missed instead of firing a burst of catch-up cycles.
      const uint64_t n = overruns.fetch_add(1, std::memory_order_relaxed);
      overrun_times[n % kOverrunLog].store(RealtimeMs(), std::memory_order_relaxed);
      const int64_t missed = (done - deadline) / config_.period_ns + 1;
      missed_deadlines.fetch_add(static_cast<uint64_t>(missed), std::memory_order_relaxed);
      skipped_from = deadline;
      skipped = missed;
      deadline += missed * config_.period_ns;
    }
    if (!changes.Empty() || !events.Empty()) Notify();
  }
}

void Poller::Disconnect(uint64_t cycle, const char* kind, const std::string& why) {
  client_.Close();
  connected.store(false);
  reconnect_delay_ms_ = reconnect_delay_ms_ == 0 ? config_.reconnect_min_ms
                                                 : std::min(config_.reconnect_max_ms, reconnect_delay_ms_ * 2);
  reconnect_at_ns_ = MonotonicNs() + static_cast<int64_t>(reconnect_delay_ms_) * 1000000LL;
  for (auto& valid : reported_valid_) std::fill(valid.begin(), valid.end(), 0);
  // One event per outage, not one per attempt: the outage ends with the first good read.
  if (!outage_reported_) {
    outage_reported_ = true;
    Event e{};
    e.type = EventType::kDisconnected;
    e.cycle = cycle;
    e.time_ms = RealtimeMs();
    e.block = -1;
    CopyText(e.kind, sizeof e.kind, kind);
    CopyText(e.message, sizeof e.message, why);
    PushEvent(e);
  }
}

void Poller::EnsureConnected(uint64_t cycle) {
  if (client_.connected() || MonotonicNs() < reconnect_at_ns_) return;
  std::string error;
  if (!client_.Connect(config_.host, config_.port, config_.connect_timeout_ms, &error)) {
    Disconnect(cycle, error.find("refused") != std::string::npos ? "refused" : "connect", error);
    return;
  }
  connects.fetch_add(1, std::memory_order_relaxed);
  connected.store(true);
  link_verified_ = false;
}

void Poller::LinkAnswered(uint64_t cycle) {
  if (link_verified_) return;
  // The link counts as up once the device answered (a listener that never answers is an outage).
  link_verified_ = true;
  outage_reported_ = false;
  reconnect_delay_ms_ = 0;
  Event e{};
  e.type = EventType::kConnected;
  e.cycle = cycle;
  e.time_ms = RealtimeMs();
  e.block = -1;
  CopyText(e.kind, sizeof e.kind, "ok");
  CopyText(e.message, sizeof e.message, config_.host + ":" + std::to_string(config_.port));
  PushEvent(e);
}

void Poller::PollCycle(uint64_t cycle) {
  EnsureConnected(cycle);
  for (size_t i = 0; i < config_.blocks.size() && client_.connected(); i++) ReadBlock(cycle, i);
  if (client_.connected()) ProcessWrites(cycle);
}

void Poller::ReadBlock(uint64_t cycle, size_t index) {
  const Block& block = config_.blocks[index];
  std::vector<uint16_t>& values = current_[index];
  uint8_t exception_code = 0;
  reads.fetch_add(1, std::memory_order_relaxed);
  const TransactionResult r = client_.Read(config_.unit_id, block.fc, block.address, block.quantity, values.data(),
                                           config_.timeout_ms, &exception_code);
  const double now_ms = RealtimeMs();
  if (r == TransactionResult::kOk || r == TransactionResult::kException) LinkAnswered(cycle);
  if (r != TransactionResult::kOk) {
    read_errors.fetch_add(1, std::memory_order_relaxed);
    if (!block_failed_[index]) {
      block_failed_[index] = 1;
      Event e{};
      e.type = EventType::kReadError;
      e.cycle = cycle;
      e.time_ms = now_ms;
      e.block = static_cast<int32_t>(index);
      e.code = exception_code;
      CopyText(e.kind, sizeof e.kind, ResultName(r));
      CopyText(e.message, sizeof e.message,
               r == TransactionResult::kException ? "Modbus exception " + std::to_string(exception_code)
               : r == TransactionResult::kTimeout ? "no answer within " + std::to_string(config_.timeout_ms) + " ms"
               : r == TransactionResult::kGarbage ? "answer does not match the request"
                                                  : "connection closed by the device");
      PushEvent(e);
    }
    std::fill(reported_valid_[index].begin(), reported_valid_[index].end(), 0);
    // A timeout or a garbled stream leaves the link out of step: reconnect (the device may answer late).
    if (r != TransactionResult::kException) Disconnect(cycle, ResultName(r), "read failed");
    return;
  }
  if (block_failed_[index]) {
    block_failed_[index] = 0;
    Event e{};
    e.type = EventType::kReadRecovered;
    e.cycle = cycle;
    e.time_ms = now_ms;
    e.block = static_cast<int32_t>(index);
    CopyText(e.kind, sizeof e.kind, "ok");
    PushEvent(e);
  }
  std::vector<uint16_t>& reported = reported_[index];
  std::vector<uint8_t>& valid = reported_valid_[index];
  for (uint16_t i = 0; i < block.quantity; i++) {
    const bool is_signed = block.is_signed[i] != 0;
    if (valid[i] && std::fabs(AsNumber(values[i], is_signed) - AsNumber(reported[i], is_signed)) <= block.deadband[i]) continue;
    const Change c{cycle, now_ms, static_cast<uint16_t>(index), i, values[i]};
    // Ring full: the change stays unreported and is detected again next cycle (nothing is lost, it is late).
    if (!changes.Push(c)) { dropped_changes.fetch_add(1, std::memory_order_relaxed); continue; }
    reported[i] = values[i];
    valid[i] = 1;
  }
  EvaluateTrips(cycle, index, now_ms);
}

void Poller::EvaluateTrips(uint64_t cycle, size_t block_index, double now_ms) {
  for (size_t r = 0; r < config_.trips.size(); r++) {
    const TripRule& rule = config_.trips[r];
    if (static_cast<size_t>(rule.block) != block_index) continue;
    const Block& block = config_.blocks[block_index];
    const double v = AsNumber(current_[block_index][rule.offset], block.is_signed[rule.offset] != 0);
    const bool crossed = rule.above ? v > rule.limit : v < rule.limit;
    if (!crossed) { trip_streak_[r] = 0; trip_latched_[r] = 0; continue; }
    if (trip_streak_[r]++ == 0) { trip_first_cycle_[r] = cycle; trip_first_ms_[r] = now_ms; }
    if (trip_latched_[r] || trip_streak_[r] < rule.cycles) continue;
    // Trip: write now, in this cycle. Latched until the condition clears, so it writes once.
    trip_latched_[r] = 1;
    trips.fetch_add(1, std::memory_order_relaxed);
    Event e{};
    e.type = EventType::kTrip;
    e.cycle = cycle;
    e.block = static_cast<int32_t>(r);
    e.crossing_cycle = trip_first_cycle_[r];
    e.crossing_ms = trip_first_ms_[r];
    e.value = static_cast<int32_t>(v);
    e.sent_ms = RealtimeMs();
    uint8_t exception_code = 0;
    const TransactionResult w = client_.Write(config_.unit_id, rule.write_fc, rule.write_address, &rule.write_value, 1,
                                              config_.timeout_ms, &exception_code);
    e.acked_ms = w == TransactionResult::kOk ? RealtimeMs() : 0;
    e.time_ms = RealtimeMs();
    e.code = exception_code;
    CopyText(e.kind, sizeof e.kind, ResultName(w));
    if (w != TransactionResult::kOk) trip_latched_[r] = 0;  // not acknowledged: try again next cycle
    PushEvent(e);
    if (w != TransactionResult::kOk && w != TransactionResult::kException) {
      Disconnect(cycle, ResultName(w), "trip write failed");
      return;
    }
  }
}

void Poller::ProcessWrites(uint64_t cycle) {
  std::vector<WriteRequest> pending;
  {
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (write_queue_.empty()) return;
    pending.swap(write_queue_);
    write_queue_.reserve(kWriteQueueLimit);
  }
  for (const WriteRequest& w : pending) {
    uint8_t exception_code = 0;
    const TransactionResult r = client_.connected()
        ? client_.Write(config_.unit_id, w.fc, w.address, w.values, w.quantity, config_.timeout_ms, &exception_code)
        : TransactionResult::kClosed;
    (r == TransactionResult::kOk ? writes : write_errors).fetch_add(1, std::memory_order_relaxed);
    Event e{};
    e.type = EventType::kWrite;
    e.cycle = cycle;
    e.time_ms = RealtimeMs();
    e.block = w.id;
    e.code = exception_code;
    CopyText(e.kind, sizeof e.kind, ResultName(r));
    PushEvent(e);
    if (r != TransactionResult::kOk && r != TransactionResult::kException && client_.connected()) {
      Disconnect(cycle, ResultName(r), "write failed");
    }
  }
}

}  // namespace unsfp
