#include "modbus_tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace unsfp {

namespace {
constexpr size_t kMbapLength = 7;     // Modbus Messaging on TCP/IP Implementation Guide v1.0b §3.1.3
constexpr size_t kMaxPduLength = 253; // App Protocol v1.1b3 §4.1
constexpr uint8_t kExceptionFlag = 0x80;

int RemainingMs(int64_t deadline_ns) {
  const int64_t left = deadline_ns - MonotonicNs();
  if (left <= 0) return 0;
  return static_cast<int>((left + 999999) / 1000000);
}
}  // namespace

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

const char* ResultName(TransactionResult r) {
  switch (r) {
    case TransactionResult::kOk: return "ok";
    case TransactionResult::kException: return "exception";
    case TransactionResult::kTimeout: return "timeout";
    case TransactionResult::kGarbage: return "garbage";
    case TransactionResult::kClosed: return "closed";
  }
  return "unknown";
}

bool ModbusTcpClient::Connect(const std::string& host, int port, int timeout_ms, std::string* error) {
  Close();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int gai = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (gai != 0) {
    *error = std::string("resolve ") + host + ": " + gai_strerror(gai);
    return false;
  }
  const int64_t deadline = MonotonicNs() + static_cast<int64_t>(timeout_ms) * 1000000LL;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) { *error = std::string("socket: ") + strerror(errno); continue; }
    int one = 1;
    // Implementation Guide v1.0b §4.3.2: disable Nagle so a request leaves at once.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      rc = Wait(fd, POLLOUT, RemainingMs(deadline));
      if (rc == 0) { *error = "connect: timed out"; close(fd); continue; }
      int so_error = 0;
      socklen_t len = sizeof so_error;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      if (rc < 0 || so_error != 0) {
        *error = std::string("connect: ") + strerror(rc < 0 ? errno : so_error);
        close(fd);
        continue;
      }
      rc = 0;
    }
    if (rc != 0) { *error = std::string("connect: ") + strerror(errno); close(fd); continue; }
    fd_ = fd;
    break;
  }
  freeaddrinfo(found);
  return fd_ >= 0;
}

int ModbusTcpClient::Wait(int fd, short events, int timeout_ms) {
  pollfd p[2] = {{fd, events, 0}, {cancel_fd_, POLLIN, 0}};
  const int rc = poll(p, cancel_fd_ >= 0 ? 2 : 1, timeout_ms);
  if (rc > 0 && cancel_fd_ >= 0 && (p[1].revents & POLLIN)) {
    errno = ECANCELED;
    return -1;
  }
  return rc;
}

void ModbusTcpClient::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool ModbusTcpClient::SendAll(const uint8_t* data, size_t length, int64_t deadline_ns) {
  size_t sent = 0;
  while (sent < length) {
    const ssize_t n = send(fd_, data + sent, length - sent, MSG_NOSIGNAL);
    if (n > 0) { sent += static_cast<size_t>(n); continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (Wait(fd_, POLLOUT, RemainingMs(deadline_ns)) <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

TransactionResult ModbusTcpClient::ReceiveExactly(uint8_t* data, size_t length, int64_t deadline_ns) {
  size_t got = 0;
  while (got < length) {
    const ssize_t n = recv(fd_, data + got, length - got, 0);
    if (n > 0) { got += static_cast<size_t>(n); continue; }
    if (n == 0) return TransactionResult::kClosed;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return TransactionResult::kClosed;
    const int wait = RemainingMs(deadline_ns);
    if (wait <= 0) return TransactionResult::kTimeout;
    const int rc = Wait(fd_, POLLIN, wait);
    if (rc == 0) return TransactionResult::kTimeout;
    if (rc < 0 && errno != EINTR) return TransactionResult::kClosed;
  }
  return TransactionResult::kOk;
}

TransactionResult ModbusTcpClient::Transact(uint8_t unit, const uint8_t* pdu, size_t pdu_length, uint8_t* response,
                                            size_t* response_length, int timeout_ms) {
  if (fd_ < 0) return TransactionResult::kClosed;
  const int64_t deadline = MonotonicNs() + static_cast<int64_t>(timeout_ms) * 1000000LL;
  uint8_t frame[kMbapLength + kMaxPduLength];
  const uint16_t tid = ++transaction_id_;
  // MBAP header (Implementation Guide v1.0b §3.1.3): transaction id, protocol 0, length, unit id.
  frame[0] = tid >> 8; frame[1] = tid & 0xff;
  frame[2] = 0; frame[3] = 0;
  const uint16_t length = static_cast<uint16_t>(pdu_length + 1);
  frame[4] = length >> 8; frame[5] = length & 0xff;
  frame[6] = unit;
  memcpy(frame + kMbapLength, pdu, pdu_length);
  if (!SendAll(frame, kMbapLength + pdu_length, deadline)) return TransactionResult::kClosed;

  uint8_t header[kMbapLength];
  TransactionResult r = ReceiveExactly(header, kMbapLength, deadline);
  if (r != TransactionResult::kOk) return r;
  const uint16_t rx_tid = (header[0] << 8) | header[1];
  const uint16_t rx_protocol = (header[2] << 8) | header[3];
  const uint16_t rx_length = (header[4] << 8) | header[5];
  // One transaction is outstanding and the link is closed after a timeout, so any other id,
  // protocol, unit or a length outside 2..254 is garbage: the stream cannot be resynchronised.
  if (rx_tid != tid || rx_protocol != 0 || header[6] != unit || rx_length < 2 || rx_length > kMaxPduLength + 1) {
    return TransactionResult::kGarbage;
  }
  *response_length = rx_length - 1;
  return ReceiveExactly(response, *response_length, deadline);
}

TransactionResult ModbusTcpClient::Read(uint8_t unit, uint8_t fc, uint16_t address, uint16_t quantity,
                                        uint16_t* values, int timeout_ms, uint8_t* exception_code) {
  const uint8_t pdu[5] = {fc, static_cast<uint8_t>(address >> 8), static_cast<uint8_t>(address & 0xff),
                          static_cast<uint8_t>(quantity >> 8), static_cast<uint8_t>(quantity & 0xff)};
  uint8_t response[kMaxPduLength];
  size_t length = 0;
  const TransactionResult r = Transact(unit, pdu, sizeof pdu, response, &length, timeout_ms);
  if (r != TransactionResult::kOk) return r;
  if (response[0] == (fc | kExceptionFlag) && length == 2) {
    *exception_code = response[1];
    return TransactionResult::kException;
  }
  const bool bits = fc <= 2;
  const size_t byte_count = bits ? (quantity + 7u) / 8u : 2u * quantity;
  if (response[0] != fc || length != 2 + byte_count || response[1] != byte_count) return TransactionResult::kGarbage;
  const uint8_t* data = response + 2;
  for (uint16_t i = 0; i < quantity; i++) {
    // §6.1: bits packed LSB first; §4.2: registers big-endian.
    values[i] = bits ? (data[i >> 3] >> (i & 7)) & 1 : static_cast<uint16_t>((data[2 * i] << 8) | data[2 * i + 1]);
  }
  return TransactionResult::kOk;
}

TransactionResult ModbusTcpClient::Write(uint8_t unit, uint8_t fc, uint16_t address, const uint16_t* values,
                                         uint16_t quantity, int timeout_ms, uint8_t* exception_code) {
  uint8_t pdu[kMaxPduLength];
  size_t pdu_length = 5;
  pdu[0] = fc;
  pdu[1] = address >> 8; pdu[2] = address & 0xff;
  uint16_t echo = 0;
  if (fc == 5 || fc == 6) {
    echo = fc == 5 ? (values[0] ? 0xff00 : 0x0000) : values[0];  // §6.5: ON is 0xFF00
    pdu[3] = echo >> 8; pdu[4] = echo & 0xff;
  } else {
    echo = quantity;
    pdu[3] = quantity >> 8; pdu[4] = quantity & 0xff;
    if (fc == 15) {
      const size_t bytes = (quantity + 7u) / 8u;
      pdu[5] = static_cast<uint8_t>(bytes);
      memset(pdu + 6, 0, bytes);
      for (uint16_t i = 0; i < quantity; i++) if (values[i]) pdu[6 + (i >> 3)] |= 1 << (i & 7);
      pdu_length = 6 + bytes;
    } else {
      pdu[5] = static_cast<uint8_t>(2 * quantity);
      for (uint16_t i = 0; i < quantity; i++) { pdu[6 + 2 * i] = values[i] >> 8; pdu[7 + 2 * i] = values[i] & 0xff; }
      pdu_length = 6 + 2u * quantity;
    }
  }
  uint8_t response[kMaxPduLength];
  size_t length = 0;
  const TransactionResult r = Transact(unit, pdu, pdu_length, response, &length, timeout_ms);
  if (r != TransactionResult::kOk) return r;
  if (response[0] == (fc | kExceptionFlag) && length == 2) {
    *exception_code = response[1];
    return TransactionResult::kException;
  }
  // §6.5/§6.6 echo the request; §6.11/§6.12 echo address and quantity.
  if (response[0] != fc || length != 5 || ((response[1] << 8) | response[2]) != address ||
      ((response[3] << 8) | response[4]) != echo) {
    return TransactionResult::kGarbage;
  }
  return TransactionResult::kOk;
}

}  // namespace unsfp
