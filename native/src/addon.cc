// N-API adapter of the poll thread (poller.h): argument checking (TypeError for wrong types,
// RangeError for values out of range), a ThreadSafeFunction that hands changes and events to JS,
// statistics as plain objects. Only this file touches JS, and only on the JS thread.
#include <napi.h>

#include <memory>

#include "poller.h"

namespace {

using unsfp::Block;
using unsfp::Event;
using unsfp::EventType;
using unsfp::Poller;
using unsfp::PollerConfig;
using unsfp::TripRule;

double NumberField(const Napi::Object& o, const char* key, double min, double max, double fallback, bool required = false) {
  Napi::Env env = o.Env();
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && !required) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(key) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max)) {
    throw Napi::RangeError::New(env, std::string(key) + " must be in " + std::to_string(min) + ".." + std::to_string(max));
  }
  return d;
}

int IntField(const Napi::Object& o, const char* key, double min, double max, double fallback, bool required = false) {
  const double d = NumberField(o, key, min, max, fallback, required);
  if (d != static_cast<double>(static_cast<int64_t>(d))) throw Napi::RangeError::New(o.Env(), std::string(key) + " must be an integer");
  return static_cast<int>(d);
}

Napi::Array ArrayField(const Napi::Object& o, const char* key, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && !required) return Napi::Array::New(o.Env());
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an array");
  return v.As<Napi::Array>();
}

Napi::Object ObjectAt(const Napi::Array& a, uint32_t i, const char* what) {
  Napi::Value v = a.Get(i);
  if (!v.IsObject()) throw Napi::TypeError::New(a.Env(), std::string(what) + " must be objects");
  return v.As<Napi::Object>();
}

PollerConfig ParseConfig(const Napi::Object& o) {
  Napi::Env env = o.Env();
  PollerConfig c;
  Napi::Value host = o.Get("host");
  if (!host.IsString()) throw Napi::TypeError::New(env, "host must be a string");
  c.host = host.As<Napi::String>().Utf8Value();
  c.port = IntField(o, "port", 1, 65535, 502, true);
  c.unit_id = static_cast<uint8_t>(IntField(o, "unitId", 0, 255, 1));
  c.period_ns = static_cast<int64_t>(NumberField(o, "periodMs", 0.1, 3600000, 1) * 1e6);
  c.timeout_ms = IntField(o, "timeoutMs", 1, 60000, 100);
  c.connect_timeout_ms = IntField(o, "connectTimeoutMs", 1, 60000, 1000);
  c.reconnect_min_ms = IntField(o, "reconnectMinMs", 1, 600000, 100);
  c.reconnect_max_ms = IntField(o, "reconnectMaxMs", c.reconnect_min_ms, 600000, 5000);
  c.ring_capacity = static_cast<size_t>(IntField(o, "ringCapacity", 16, 1 << 22, 65536));
  Napi::Array blocks = ArrayField(o, "blocks", true);
  if (blocks.Length() == 0) throw Napi::RangeError::New(env, "blocks must not be empty");
  for (uint32_t i = 0; i < blocks.Length(); i++) {
    Napi::Object b = ObjectAt(blocks, i, "blocks");
    Block block;
    block.fc = static_cast<uint8_t>(IntField(b, "fc", 1, 4, 0, true));
    block.address = static_cast<uint16_t>(IntField(b, "address", 0, 65535, 0, true));
    block.quantity = static_cast<uint16_t>(IntField(b, "quantity", 1, block.fc <= 2 ? 2000 : 125, 0, true));
    if (block.address + block.quantity > 65536) throw Napi::RangeError::New(env, "block runs past address 65535");
    block.deadband.assign(block.quantity, 0);
    block.is_signed.assign(block.quantity, 0);
    Napi::Array deadbands = ArrayField(b, "deadbands", false);
    Napi::Array is_signed = ArrayField(b, "signed", false);
    if (deadbands.Length() > block.quantity || is_signed.Length() > block.quantity) {
      throw Napi::RangeError::New(env, "deadbands/signed longer than the block");
    }
    for (uint32_t k = 0; k < deadbands.Length(); k++) {
      Napi::Value d = deadbands.Get(k);
      if (!d.IsNumber()) throw Napi::TypeError::New(env, "deadbands must be numbers");
      block.deadband[k] = d.As<Napi::Number>().DoubleValue();
    }
    for (uint32_t k = 0; k < is_signed.Length(); k++) block.is_signed[k] = is_signed.Get(k).ToBoolean() ? 1 : 0;
    c.blocks.push_back(std::move(block));
  }
  Napi::Array trips = ArrayField(o, "trips", false);
  for (uint32_t i = 0; i < trips.Length(); i++) {
    Napi::Object t = ObjectAt(trips, i, "trips");
    TripRule rule;
    rule.block = IntField(t, "block", 0, static_cast<double>(c.blocks.size() - 1), 0, true);
    rule.offset = IntField(t, "offset", 0, c.blocks[rule.block].quantity - 1, 0, true);
    Napi::Value when = t.Get("when");
    if (!when.IsString()) throw Napi::TypeError::New(env, "trips[].when must be 'above' or 'below'");
    const std::string w = when.As<Napi::String>().Utf8Value();
    if (w != "above" && w != "below") throw Napi::RangeError::New(env, "trips[].when must be 'above' or 'below'");
    rule.above = w == "above";
    rule.limit = NumberField(t, "limit", -1e300, 1e300, 0, true);
    rule.cycles = IntField(t, "cycles", 1, 1000000, 1);
    rule.write_fc = static_cast<uint8_t>(IntField(t, "writeFc", 5, 6, 6));
    rule.write_address = static_cast<uint16_t>(IntField(t, "writeAddress", 0, 65535, 0, true));
    rule.write_value = static_cast<uint16_t>(IntField(t, "writeValue", 0, 65535, 0, true));
    c.trips.push_back(rule);
  }
  Napi::Value rt = o.Get("realtime");
  if (!rt.IsUndefined()) {
    if (!rt.IsObject()) throw Napi::TypeError::New(env, "realtime must be an object");
    Napi::Object r = rt.As<Napi::Object>();
    c.realtime.priority = IntField(r, "priority", 0, 99, 0);
    c.realtime.cpu = IntField(r, "cpu", -1, 1023, -1);
    c.realtime.spin_ns = static_cast<int64_t>(IntField(r, "spinUs", 0, 1000, 0)) * 1000;
    Napi::Value lock = r.Get("lockMemory");
    if (!lock.IsUndefined() && !lock.IsBoolean()) throw Napi::TypeError::New(env, "realtime.lockMemory must be a boolean");
    c.realtime.lock_memory = lock.IsBoolean() && lock.As<Napi::Boolean>().Value();
  }
  return c;
}

const char* EventTypeName(EventType t) {
  switch (t) {
    case EventType::kConnected: return "connected";
    case EventType::kDisconnected: return "disconnected";
    case EventType::kReadError: return "read-error";
    case EventType::kReadRecovered: return "read-recovered";
    case EventType::kTrip: return "trip";
    case EventType::kWrite: return "write";
  }
  return "unknown";
}

Napi::Object EventToJs(Napi::Env env, const Event& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", EventTypeName(e.type));
  o.Set("cycle", static_cast<double>(e.cycle));
  o.Set("time", e.time_ms);
  o.Set("kind", e.kind);
  if (e.message[0]) o.Set("message", e.message);
  if (e.code) o.Set("code", e.code);
  switch (e.type) {
    case EventType::kReadError: case EventType::kReadRecovered: o.Set("block", e.block); break;
    case EventType::kWrite: o.Set("id", e.block); break;
    case EventType::kTrip:
      o.Set("rule", e.block);
      o.Set("value", e.value);
      o.Set("crossingCycle", static_cast<double>(e.crossing_cycle));
      o.Set("crossingTime", e.crossing_ms);
      o.Set("sentTime", e.sent_ms);
      if (e.acked_ms > 0) o.Set("ackedTime", e.acked_ms);
      break;
    default: break;
  }
  return o;
}

// Deliver everything in the rings as one batch: changes as a Float64Array of
// [cycle, time, block, offset, value] records, events as objects.
void Deliver(Napi::Env env, Napi::Function callback, const std::shared_ptr<Poller>& poller) {
  poller->NotificationDone();  // first, so a push during the drain triggers a new notification
  std::vector<unsfp::Change> changes;
  unsfp::Change c;
  while (poller->changes.Pop(&c)) changes.push_back(c);
  Napi::Float64Array records = Napi::Float64Array::New(env, changes.size() * 5);
  for (size_t i = 0; i < changes.size(); i++) {
    records[5 * i] = static_cast<double>(changes[i].cycle);
    records[5 * i + 1] = changes[i].time_ms;
    records[5 * i + 2] = changes[i].block;
    records[5 * i + 3] = changes[i].offset;
    records[5 * i + 4] = changes[i].value;
  }
  Napi::Array events = Napi::Array::New(env);
  Event e;
  uint32_t n = 0;
  while (poller->events.Pop(&e)) events.Set(n++, EventToJs(env, e));
  if (changes.empty() && n == 0) return;
  callback.Call({records, events});
}

Napi::Object HistogramToJs(Napi::Env env, const unsfp::Histogram& h) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Float64Array counts = Napi::Float64Array::New(env, unsfp::kHistogramBuckets);
  for (int i = 0; i < unsfp::kHistogramBuckets; i++) counts[i] = static_cast<double>(h.counts[i].load(std::memory_order_relaxed));
  o.Set("counts", counts);
  o.Set("total", static_cast<double>(h.total.load()));
  o.Set("maxNs", static_cast<double>(h.max.load()));
  o.Set("sumNs", static_cast<double>(h.sum.load()));
  return o;
}

class FastPoller : public Napi::ObjectWrap<FastPoller> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FastPoller", {
      InstanceMethod<&FastPoller::Start>("start"),
      InstanceMethod<&FastPoller::Stop>("stop"),
      InstanceMethod<&FastPoller::Write>("write"),
      InstanceMethod<&FastPoller::Stats>("stats"),
      InstanceAccessor<&FastPoller::Running>("running"),
    });
  }

  explicit FastPoller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FastPoller>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "new FastPoller(options: object, onBatch: function)");
    }
    config_ = ParseConfig(info[0].As<Napi::Object>());
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
  }

  ~FastPoller() override { Shutdown(); }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (poller_) return info.Env().Undefined();
    tsfn_ = Napi::ThreadSafeFunction::New(info.Env(), callback_.Value(), "uns-fast-poll", 0, 1);
    poller_ = std::make_shared<Poller>(config_, [this] { NotifyFromPollThread(); });
    poller_->Start();
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Poller> last = poller_;
    Shutdown();
    // Hand over what the thread produced before it stopped.
    if (last) Deliver(env, callback_.Value(), last);
    return env.Undefined();
  }

  void Shutdown() {
    if (!poller_) return;
    poller_->Stop();  // joins the poll thread: no more notifications after this
    tsfn_.Release();
    poller_.reset();  // calls still queued in the TSFN hold their own reference
  }

  // Poll thread: never blocks (NonBlockingCall on an unlimited queue; at most one call is pending,
  // Poller::Notify coalesces). The lambda keeps the Poller alive until the JS thread ran it.
  void NotifyFromPollThread() {
    std::shared_ptr<Poller> poller = poller_;
    tsfn_.NonBlockingCall([poller](Napi::Env env, Napi::Function callback) { Deliver(env, callback, poller); });
  }

  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsArray()) {
      throw Napi::TypeError::New(env, "write(id: number, fc: number, address: number, values: number[])");
    }
    unsfp::WriteRequest w{};
    w.id = info[0].As<Napi::Number>().Int32Value();
    const int fc = info[1].As<Napi::Number>().Int32Value();
    const double address = info[2].As<Napi::Number>().DoubleValue();
    Napi::Array values = info[3].As<Napi::Array>();
    const uint32_t max = fc == 16 ? 123 : fc == 15 ? 123 : 1;  // FC15 limited to 123 here (one buffer)
    if (fc != 5 && fc != 6 && fc != 15 && fc != 16) throw Napi::RangeError::New(env, "fc must be 5, 6, 15 or 16");
    if (!(address >= 0 && address <= 65535)) throw Napi::RangeError::New(env, "address must be 0..65535");
    if (values.Length() < 1 || values.Length() > max) throw Napi::RangeError::New(env, "wrong number of values for this function code");
    w.fc = static_cast<uint8_t>(fc);
    w.address = static_cast<uint16_t>(address);
    w.quantity = static_cast<uint16_t>(values.Length());
    for (uint32_t i = 0; i < values.Length(); i++) {
      Napi::Value v = values.Get(i);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, "values must be numbers");
      const double d = v.As<Napi::Number>().DoubleValue();
      if (!(d >= 0 && d <= 65535) || d != static_cast<double>(static_cast<int64_t>(d))) throw Napi::RangeError::New(env, "values must be integers 0..65535");
      w.values[i] = static_cast<uint16_t>(d);
    }
    if (!poller_) throw Napi::Error::New(env, "the poller is not running");
    return Napi::Boolean::New(env, poller_->QueueWrite(w));
  }

  Napi::Value Running(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), poller_ != nullptr); }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    if (!poller_) return env.Null();
    Poller& p = *poller_;
    o.Set("implementation", "native");
    o.Set("cycles", static_cast<double>(p.cycles.load()));
    o.Set("overruns", static_cast<double>(p.overruns.load()));
    o.Set("missedDeadlines", static_cast<double>(p.missed_deadlines.load()));
    o.Set("droppedChanges", static_cast<double>(p.dropped_changes.load()));
    o.Set("droppedEvents", static_cast<double>(p.dropped_events.load()));
    o.Set("reads", static_cast<double>(p.reads.load()));
    o.Set("readErrors", static_cast<double>(p.read_errors.load()));
    o.Set("connects", static_cast<double>(p.connects.load()));
    o.Set("trips", static_cast<double>(p.trips.load()));
    o.Set("writes", static_cast<double>(p.writes.load()));
    o.Set("writeErrors", static_cast<double>(p.write_errors.load()));
    o.Set("notifications", static_cast<double>(p.notifications.load()));
    o.Set("connected", p.connected.load());
    o.Set("lateness", HistogramToJs(env, p.lateness));
    o.Set("missedLateness", HistogramToJs(env, p.missed_lateness));
    o.Set("cycleTime", HistogramToJs(env, p.cycle_time));
    Napi::Array times = Napi::Array::New(env);
    const uint64_t n = std::min<uint64_t>(p.overruns.load(), Poller::kOverrunLog);
    const uint64_t first = p.overruns.load() - n;
    for (uint64_t i = 0; i < n; i++) times.Set(static_cast<uint32_t>(i), p.overrun_times[(first + i) % Poller::kOverrunLog].load());
    o.Set("overrunTimes", times);
    const unsfp::RealtimeReport rt = p.realtime_report();
    Napi::Object r = Napi::Object::New(env);
    r.Set("policy", rt.policy);
    r.Set("priority", rt.priority);
    r.Set("cpu", rt.cpu);
    r.Set("memoryLocked", rt.memory_locked);
    Napi::Array notes = Napi::Array::New(env);
    for (size_t i = 0; i < rt.notes.size(); i++) notes.Set(static_cast<uint32_t>(i), rt.notes[i]);
    r.Set("notes", notes);
    o.Set("realtime", r);
    return o;
  }

  PollerConfig config_;
  Napi::FunctionReference callback_;
  Napi::ThreadSafeFunction tsfn_;
  std::shared_ptr<Poller> poller_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("FastPoller", FastPoller::Define(env));
  exports.Set("histogramBuckets", Napi::Number::New(env, unsfp::kHistogramBuckets));
  return exports;
}

}  // namespace

NODE_API_MODULE(uns_fast_poll, Init)
