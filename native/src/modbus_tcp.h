// A blocking Modbus TCP client for the poll thread: one outstanding transaction, TCP_NODELAY,
// every wait bounded with poll(). No JS, no allocation per transaction.
#pragma once
#include <cstdint>
#include <string>

namespace unsfp {

enum class TransactionResult {
  kOk = 0,
  kException,   // the device answered with a Modbus exception (App Protocol v1.1b3 §7)
  kTimeout,     // no (complete) answer within the timeout
  kGarbage,     // an answer that does not match the request (ids, function, length, echo)
  kClosed,      // the peer closed the connection or the socket failed
};

const char* ResultName(TransactionResult r);

class ModbusTcpClient {
 public:
  ~ModbusTcpClient() { Close(); }
  // Connect with a timeout; on failure returns false and fills *error (e.g. "connect: Connection refused").
  bool Connect(const std::string& host, int port, int timeout_ms, std::string* error);
  void Close();
  bool connected() const { return fd_ >= 0; }
  // A descriptor that becomes readable when waiting must end (stop()): every wait also polls it.
  void set_cancel_fd(int fd) { cancel_fd_ = fd; }

  // FC1/FC2/FC3/FC4 (§6.1–§6.4): registers as uint16 (bits as 0/1) into values[0..quantity).
  TransactionResult Read(uint8_t unit, uint8_t fc, uint16_t address, uint16_t quantity, uint16_t* values,
                         int timeout_ms, uint8_t* exception_code);
  // FC5 (§6.5, value 0/1), FC6 (§6.6), FC15 (§6.11, values 0/1), FC16 (§6.12).
  TransactionResult Write(uint8_t unit, uint8_t fc, uint16_t address, const uint16_t* values, uint16_t quantity,
                          int timeout_ms, uint8_t* exception_code);

 private:
  TransactionResult Transact(uint8_t unit, const uint8_t* pdu, size_t pdu_length, uint8_t* response,
                             size_t* response_length, int timeout_ms);
  bool SendAll(const uint8_t* data, size_t length, int64_t deadline_ns);
  TransactionResult ReceiveExactly(uint8_t* data, size_t length, int64_t deadline_ns);

  // poll() on the socket and the cancel descriptor: >0 ready, 0 timeout, <0 error or cancelled.
  int Wait(int fd, short events, int timeout_ms);

  int fd_ = -1;
  int cancel_fd_ = -1;
  uint16_t transaction_id_ = 0;
};

int64_t MonotonicNs();

}  // namespace unsfp
