// The device's outbox: every reading waits here until the gateway confirms that it committed it
// (docs/delivery.md, "The device's side", rules 1-6). The broker's PUBACK only means "Mosquitto has it
// in memory", so a reading is released on a commit confirmation from `sensors/<id>/ack`, or on the
// PUBACK only when the gateway is an old one that never confirms (rule 6).
//
// RAM only: it survives a lost connection, not a reset (docs/firmware-notes.md#offline-buffer).
// Storage is allocated once, up front: `capacity` entries of 32 bytes (a 24-byte Reading, its 4-byte
// send number, its 4-byte send time), so the firmware's default of 2048 readings costs 64 KiB of heap.
//
// Lifecycle, as the glue drives it (one task; none of these may be called from inside
// Transport::publish, so confirmations that arrive during a blocking publish are queued by the
// glue and handed over afterwards):
//   push()            for every new reading, connected or not                          (rule 1)
//   on_connected()    after every (re)connect, before the next pump()                  (rule 4)
//   on_ack_payload()  for every payload from `ack`: parse_confirmation + on_confirmation (rules 3, 6)
//   pump()            once per loop pass while connected: probe, fallback, publishes   (rules 2, 5, 6)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/ports.h"
#include "ferry/telemetry.h"

namespace ferry {

/// One inclusive range of `seq` within a boot.
struct SeqRange {
  uint32_t from = 0;
  uint32_t to = 0;
};

/// A commit confirmation: `{"boot": uint, "seqs": [[from, to], ...]}` on `sensors/<id>/ack`.
struct Confirmation {
  uint32_t boot = 0;
  std::vector<SeqRange> seqs;  ///< ascending, disjoint, from <= to (parse_confirmation guarantees it)
};

/// The contract's limit on ranges per message (docs/delivery.md, "The topic").
constexpr std::size_t kMaxConfirmationRanges = 32;
/// The longest payload the gateway sends: 32 ranges of 10-digit numbers, no whitespace
/// (`{"boot":4294967295,"seqs":[[4294967295,4294967295],...]}`). The MQTT read buffer must hold
/// this plus the topic, or the broker's retained copy can never be read (src/mqtt.cpp asserts it).
constexpr std::size_t kMaxConfirmationBytes = 796;

/// Parses an `ack` payload with the strict JSON reader (ferry/json.h). Returns false, with a reason,
/// and leaves nothing usable in `out` for:
/// - anything the reader refuses: not JSON, duplicate keys, trailing data, nesting deeper than
///   object > array > array, more than 2048 bytes;
/// - a top level that is not an object;
/// - `boot` missing or not an integer 0..4294967295;
/// - `seqs` missing or not an array, or more than kMaxConfirmationRanges entries;
/// - an entry that is not an array of exactly two integers 0..4294967295;
/// - a range with from > to;
/// - a range that does not start after the previous one ends (not ascending, or overlapping).
/// Members other than `boot` and `seqs` are ignored, so a gateway may add fields later. An empty
/// `seqs` is well-formed (it releases nothing but still shows that the gateway confirms).
bool parse_confirmation(std::string_view payload, Confirmation& out, std::string* reason = nullptr);

/// What releases readings: the gateway's commit confirmations, or (fallback for old gateways,
/// rule 6) the broker's PUBACK.
enum class ConfirmMode : uint8_t { Gateway, Broker };
/// "gateway" or "broker", as logged (`confirm=gateway`).
const char* to_string(ConfirmMode m);

struct OutboxOptions {
  std::size_t capacity = 2048;          ///< readings held at most; full = drop the oldest (rule 1)
  uint32_t ack_timeout_ms = 10000;      ///< first probe this long after the oldest was sent (rule 5)
  uint32_t ack_timeout_max_ms = 300000; ///< the probe period doubles up to this
  uint32_t fallback_ms = 60000;         ///< no confirmation this long after a connection's first PUBACK: rule 6
  /// Rule 3 re-marks a held reading only once it was sent at least this long ago: gateway replicas
  /// confirm independently (docs/scale-out.md), so a later reading's confirmation may come first.
  uint32_t reorder_ms = 1000;
};

/// What one confirmation did.
struct ConfirmResult {
  bool current_boot = false;  ///< false: another boot's ranges, nothing released (still a confirmation)
  std::size_t released = 0;   ///< readings released (rule 3)
  std::size_t remarked = 0;   ///< held readings sent before a released one, marked for sending again
};

class Outbox {
 public:
  /// `boot` is this boot's number: confirmations for any other boot release nothing, and every
  /// reading pushed must carry it.
  Outbox(std::string topic, uint32_t boot, const OutboxOptions& opts = {});

  /// Rule 1: appends a reading (to be published at QoS 1 on `topic`). Returns true when the outbox
  /// was full and its oldest reading was dropped to make room; dropped() counts them.
  bool push(const Reading& r);

  /// Rule 4: the connection is new, so anything published before may be lost (the broker may have
  /// restarted): every held reading is marked for sending again, in order. Also restarts rule 6's
  /// watch for this connection. The confirmation mode itself is kept.
  void on_connected();

  /// Rules 3 and 6. A confirmation for the current boot releases every held reading inside its
  /// ranges; a held reading whose last send came before the latest send of a released one, at least
  /// `reorder_ms` ago, was lost on the way (MQTT keeps order on one session), so it is marked for
  /// sending again (a younger one is left for a later confirmation: replicas may confirm out of
  /// order). Any
  /// confirmation, of any boot, switches to ConfirmMode::Gateway and counts as heard on this
  /// connection; one for the current boot also resets the probe period (rule 5).
  /// Precondition: `c` came from parse_confirmation (ranges ascending and disjoint).
  ConfirmResult on_confirmation(const Confirmation& c, uint32_t now_ms);

  /// A payload from `sensors/<id>/ack`, as received: parse_confirmation(), then on_confirmation().
  /// A malformed payload (an empty one included: a cleared retained message) changes nothing and
  /// returns false with the reason, for the log.
  bool on_ack_payload(std::string_view payload, uint32_t now_ms, std::string* reason = nullptr,
                      ConfirmResult* result = nullptr);

  /// Publishes at most `max` readings at QoS 1, oldest first, and stops at the first publish that
  /// fails (the Transport contract in ports.h: true = PUBACK). Before that, in this order:
  /// - rule 6: in Gateway mode, when no confirmation was heard on this connection within
  ///   `fallback_ms` of its first PUBACK, switches to Broker mode and releases what was PUBACKed;
  /// - rule 5: in Gateway mode, when the oldest held reading was sent and neither it was sent again
  ///   nor any confirmation came for the current probe period, marks it for sending again (a
  ///   probe) and doubles the period, up to `ack_timeout_max_ms`.
  /// In Broker mode a reading is released on its PUBACK. Returns how many publishes got a PUBACK.
  std::size_t pump(Transport& t, uint32_t now_ms, std::size_t max);

  ConfirmMode mode() const { return mode_; }
  uint32_t boot() const { return boot_; }
  std::size_t capacity() const { return slots_.size(); }
  /// Readings held: not yet released, whether sent or not.
  std::size_t held() const { return size_; }
  /// Held readings waiting for their (next) publish.
  std::size_t unsent() const { return unsent_; }
  /// Readings dropped since boot because the outbox was full.
  uint32_t dropped() const { return dropped_; }
  /// Publishes that got a PUBACK (each one used a send number), probes and resends included.
  uint32_t published() const { return published_; }
  /// Readings released, by a confirmation or (Broker mode) by their PUBACK.
  uint32_t released() const { return released_; }
  /// Probes sent (rule 5).
  uint32_t probes() const { return probes_; }
  /// The current probe period (rule 5).
  uint32_t ack_timeout_ms() const { return timeout_; }

 private:
  /// A held reading. `send` is the send number of its last publish on this connection, 0 while it
  /// waits for a publish (never sent, or marked for sending again).
  struct Entry {
    Reading r;
    uint32_t send = 0;
    uint32_t sent_ms = 0;  ///< when it was last published (rule 3's reorder window)
  };

  Entry& at(std::size_t i) { return slots_[(head_ + i) % slots_.size()]; }
  void mark_unsent(Entry& e);
  /// Removes the entries for which `release(entry)` is true, keeping the order of the rest.
  template <typename Pred>
  std::size_t release_if(Pred release);
  /// Broker mode: every entry with a send number got its PUBACK on this connection.
  void release_sent();

  std::vector<Entry> slots_;
  std::string topic_;
  uint32_t boot_;
  OutboxOptions opts_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::size_t unsent_ = 0;
  uint32_t next_send_ = 1;
  ConfirmMode mode_ = ConfirmMode::Gateway;
  // rule 5
  uint32_t timeout_;
  uint32_t probe_ref_ms_ = 0;  ///< the later of: the oldest held was last published, the last confirmation
  // rule 6, per connection
  bool heard_ = false;
  bool puback_seen_ = false;
  uint32_t first_puback_ms_ = 0;
  // counters
  uint32_t dropped_ = 0;
  uint32_t published_ = 0;
  uint32_t released_ = 0;
  uint32_t probes_ = 0;
};

}  // namespace ferry
