#include "ferry/outbox.h"

#include <algorithm>
#include <utility>

#include "ferry/json.h"

namespace ferry {
namespace {

bool fail(std::string* reason, const char* why) {
  if (reason) *reason = why;
  return false;
}

/// Serial-number order (RFC 1982 style), so send numbers may wrap after 2^32 publishes.
bool sent_before(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

bool elapsed(uint32_t now_ms, uint32_t since_ms, uint32_t period_ms) { return now_ms - since_ms >= period_ms; }

/// Binary search over ascending, disjoint ranges.
bool covers(const std::vector<SeqRange>& ranges, uint32_t seq) {
  auto it = std::lower_bound(ranges.begin(), ranges.end(), seq,
                             [](const SeqRange& r, uint32_t s) { return r.to < s; });
  return it != ranges.end() && it->from <= seq;
}

}  // namespace

bool parse_confirmation(std::string_view payload, Confirmation& out, std::string* reason) {
  out = Confirmation{};
  json::Value v;
  std::string err;
  // Depth 3: object > seqs array > range array.
  if (!json::parse(payload, v, &err, json::Limits{2048, 3})) {
    if (reason) *reason = "not JSON: " + err;
    return false;
  }
  if (!v.is(json::Type::Object)) return fail(reason, "expected {\"boot\", \"seqs\"}");
  const json::Value* boot = v.get("boot");
  const json::Value* seqs = v.get("seqs");
  Confirmation c;
  if (!boot || !boot->as_uint_to(c.boot, UINT32_MAX)) return fail(reason, "boot must be an integer 0..4294967295");
  if (!seqs || !seqs->is(json::Type::Array)) return fail(reason, "seqs must be an array of [from, to] ranges");
  if (seqs->items.size() > kMaxConfirmationRanges) return fail(reason, "seqs has more than 32 ranges");
  c.seqs.reserve(seqs->items.size());
  for (const json::Value& item : seqs->items) {
    SeqRange r;
    if (!item.is(json::Type::Array) || item.items.size() != 2 || !item.items[0].as_uint_to(r.from, UINT32_MAX) ||
        !item.items[1].as_uint_to(r.to, UINT32_MAX)) {
      return fail(reason, "each range must be [from, to] with integers 0..4294967295");
    }
    if (r.from > r.to) return fail(reason, "a range has from > to");
    if (!c.seqs.empty() && r.from <= c.seqs.back().to) return fail(reason, "ranges are not ascending and disjoint");
    c.seqs.push_back(r);
  }
  out = std::move(c);
  return true;
}

const char* to_string(ConfirmMode m) { return m == ConfirmMode::Gateway ? "gateway" : "broker"; }

Outbox::Outbox(std::string topic, uint32_t boot, const OutboxOptions& opts)
    : slots_(opts.capacity ? opts.capacity : 1),
      topic_(std::move(topic)),
      boot_(boot),
      opts_(opts),
      timeout_(opts.ack_timeout_ms) {
  // What the README's RAM figure rests on: 2048 entries = 64 KiB, on the ESP32 as on the host.
  static_assert(sizeof(Entry) == 32, "outbox entry size changed: update the RAM cost in firmware/README.md");
}

void Outbox::mark_unsent(Entry& e) {
  if (e.send == 0) return;
  e.send = 0;
  ++unsent_;
}

bool Outbox::push(const Reading& r) {
  bool dropped = false;
  if (size_ == slots_.size()) {
    // The oldest goes, sent or not. The probe timer is left alone, so a long gateway outage still
    // costs one probe per period, not one per dropped reading.
    if (at(0).send == 0) --unsent_;
    head_ = (head_ + 1) % slots_.size();
    --size_;
    ++dropped_;
    dropped = true;
  }
  at(size_) = Entry{r, 0};
  ++size_;
  ++unsent_;
  return dropped;
}

template <typename Pred>
std::size_t Outbox::release_if(Pred release) {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < size_; ++i) {
    Entry& e = at(i);
    if (release(e)) {
      if (e.send == 0) --unsent_;
      continue;
    }
    if (kept != i) at(kept) = e;
    ++kept;
  }
  std::size_t n = size_ - kept;
  size_ = kept;
  released_ += static_cast<uint32_t>(n);
  return n;
}

void Outbox::release_sent() {
  release_if([](const Entry& e) { return e.send != 0; });
}

void Outbox::on_connected() {
  for (std::size_t i = 0; i < size_; ++i) mark_unsent(at(i));
  heard_ = false;
  puback_seen_ = false;
}

bool Outbox::on_ack_payload(std::string_view payload, uint32_t now_ms, std::string* reason, ConfirmResult* result) {
  Confirmation c;
  if (!parse_confirmation(payload, c, reason)) return false;
  ConfirmResult r = on_confirmation(c, now_ms);
  if (result) *result = r;
  return true;
}

ConfirmResult Outbox::on_confirmation(const Confirmation& c, uint32_t now_ms) {
  ConfirmResult res;
  heard_ = true;
  mode_ = ConfirmMode::Gateway;
  if (c.boot != boot_) return res;  // a stale retained message of an earlier boot
  res.current_boot = true;
  timeout_ = opts_.ack_timeout_ms;
  probe_ref_ms_ = now_ms;

  bool any_sent = false;
  uint32_t latest = 0;  // the latest send number among the released readings
  res.released = release_if([&](const Entry& e) {
    if (!covers(c.seqs, e.r.seq)) return false;
    if (e.send != 0 && (!any_sent || sent_before(latest, e.send))) {
      latest = e.send;
      any_sent = true;
    }
    return true;
  });
  if (!any_sent) return res;
  // Rule 3: what was sent before a released reading and is still held did not reach the gateway,
  // once it is older than the reorder window (replicas confirm independently: docs/scale-out.md).
  for (std::size_t i = 0; i < size_; ++i) {
    Entry& e = at(i);
    if (e.send != 0 && sent_before(e.send, latest) && elapsed(now_ms, e.sent_ms, opts_.reorder_ms)) {
      mark_unsent(e);
      ++res.remarked;
    }
  }
  return res;
}

std::size_t Outbox::pump(Transport& t, uint32_t now_ms, std::size_t max) {
  if (!t.connected()) return 0;
  if (mode_ == ConfirmMode::Gateway && !heard_ && puback_seen_ &&
      elapsed(now_ms, first_puback_ms_, opts_.fallback_ms)) {
    mode_ = ConfirmMode::Broker;  // rule 6: this gateway does not confirm commits; the PUBACKed
                                  // readings are released at the end of this call
  }
  if (mode_ == ConfirmMode::Gateway && size_ > 0 && at(0).send != 0 && elapsed(now_ms, probe_ref_ms_, timeout_)) {
    mark_unsent(at(0));  // rule 5: the probe
    ++probes_;
    timeout_ = timeout_ >= opts_.ack_timeout_max_ms / 2 ? opts_.ack_timeout_max_ms : timeout_ * 2;
  }

  std::size_t sent = 0;
  for (std::size_t i = 0; i < size_ && sent < max && unsent_ > 0; ++i) {
    Entry& e = at(i);
    if (e.send != 0) continue;
    if (!t.publish(topic_, encode_telemetry(e.r), 1, false)) break;
    e.send = next_send_++;
    e.sent_ms = now_ms;
    if (next_send_ == 0) next_send_ = 1;  // 0 means "not sent"
    --unsent_;
    ++sent;
    ++published_;
    if (i == 0) probe_ref_ms_ = now_ms;
    if (!puback_seen_) {
      puback_seen_ = true;
      first_puback_ms_ = now_ms;
    }
  }
  if (mode_ == ConfirmMode::Broker) release_sent();
  return sent;
}

}  // namespace ferry
