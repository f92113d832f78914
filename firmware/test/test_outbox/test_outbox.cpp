// The device's side of docs/delivery.md: each case names the rule it checks.
#include <algorithm>
#include <string>
#include <vector>

#include "fakes/doctest.h"
#include "fakes/fakes.h"
#include "ferry/json.h"
#include "ferry/outbox.h"

namespace {

constexpr uint32_t kBoot = 7;
const char* const kTopic = "sensors/n/telemetry";

ferry::Reading reading(uint32_t seq) {
  ferry::Reading r;
  r.seq = seq;
  r.boot = kBoot;
  r.pot = uint16_t(seq % 4096);
  r.sw = seq & 1;
  return r;
}

ferry::Confirmation confirm(uint32_t boot, std::vector<ferry::SeqRange> seqs) {
  ferry::Confirmation c;
  c.boot = boot;
  c.seqs = std::move(seqs);
  return c;
}

/// The `seq` of every telemetry publish from `first` on, in the order the broker got them.
std::vector<uint32_t> seqs_sent(const fakes::FakeTransport& broker, std::size_t first = 0) {
  std::vector<uint32_t> out;
  for (std::size_t i = first; i < broker.sent.size(); ++i) {
    ferry::json::Value v;
    uint64_t seq = 0;
    REQUIRE(ferry::json::parse(broker.sent[i].payload, v));
    REQUIRE(v.get("seq"));
    REQUIRE(v.get("seq")->as_uint(seq));
    out.push_back(uint32_t(seq));
  }
  return out;
}

std::vector<uint32_t> range(uint32_t from, uint32_t to) {
  std::vector<uint32_t> out;
  for (uint32_t s = from; s <= to; ++s) out.push_back(s);
  return out;
}

/// A link on which one publish attempt fails (a lost PUBACK) while later ones would succeed.
struct FlakyTransport : fakes::FakeTransport {
  int fail_attempt = -1;
  int attempts = 0;
  bool publish(const std::string& topic, std::string_view payload, int qos, bool retain) override {
    if (attempts++ == fail_attempt) return false;
    return FakeTransport::publish(topic, payload, qos, retain);
  }
};

/// An outbox on boot 7 holding `from..to`, all published once at `now_ms`.
struct Sent {
  fakes::FakeTransport broker;
  ferry::Outbox box;
  Sent(uint32_t from, uint32_t to, uint32_t now_ms = 0, ferry::OutboxOptions opts = {})
      : box(kTopic, kBoot, opts) {
    box.on_connected();
    for (uint32_t s = from; s <= to; ++s) box.push(reading(s));
    REQUIRE(box.pump(broker, now_ms, 1000) == to - from + 1);
  }
};

}  // namespace

TEST_SUITE("outbox") {
  TEST_CASE("rule 1: a reading stays held after its PUBACK until a confirmation covers it") {
    Sent s(0, 2);
    REQUIRE(s.broker.sent.size() == 3);
    CHECK(s.broker.sent[0].topic == kTopic);
    CHECK(s.broker.sent[0].qos == 1);
    CHECK_FALSE(s.broker.sent[0].retain);
    CHECK(s.box.held() == 3);
    CHECK(s.box.unsent() == 0);
    CHECK(s.box.pump(s.broker, 1000, 100) == 0);  // nothing new to send; no probe before 10 s
    CHECK(s.box.held() == 3);

    ferry::ConfirmResult r = s.box.on_confirmation(confirm(kBoot, {{0, 1}}), 2000);
    CHECK(r.current_boot);
    CHECK(r.released == 2);
    CHECK(r.remarked == 0);
    CHECK(s.box.held() == 1);
    s.box.on_confirmation(confirm(kBoot, {{2, 2}}), 2000);
    CHECK(s.box.held() == 0);
    CHECK(s.box.released() == 3);
    CHECK(s.box.mode() == ferry::ConfirmMode::Gateway);
  }

  TEST_CASE("rule 2: readings go out oldest first, at most max per call, and wait while the link is down") {
    fakes::FakeTransport broker;
    broker.up = false;
    ferry::Outbox box(kTopic, kBoot);
    for (uint32_t s = 0; s < 25; ++s) box.push(reading(s));
    CHECK(box.pump(broker, 0, 100) == 0);  // not connected
    broker.up = true;
    box.on_connected();
    CHECK(box.pump(broker, 0, 10) == 10);
    broker.ack_budget = 4;  // the link dies after four more PUBACKs
    CHECK(box.pump(broker, 0, 10) == 4);
    CHECK(box.unsent() == 11);
    broker.ack_budget = -1;
    CHECK(box.pump(broker, 0, 100) == 11);
    CHECK(seqs_sent(broker) == range(0, 24));
    CHECK(box.published() == 25);
    CHECK(box.held() == 25);
  }

  TEST_CASE("rule 2: a failed publish ends the call, so nothing overtakes the reading that failed") {
    FlakyTransport broker;
    broker.fail_attempt = 2;
    ferry::Outbox box(kTopic, kBoot);
    box.on_connected();
    for (uint32_t s = 0; s < 5; ++s) box.push(reading(s));
    CHECK(box.pump(broker, 0, 100) == 2);
    CHECK(box.unsent() == 3);
    CHECK(box.pump(broker, 0, 100) == 3);
    CHECK(seqs_sent(broker) == range(0, 4));
  }

  TEST_CASE("rule 3: a confirmation for 5..9 while 1..4 are held sends 1..4 again first, in order") {
    Sent s(1, 12);
    ferry::ConfirmResult r = s.box.on_confirmation(confirm(kBoot, {{5, 9}}), 1000);
    CHECK(r.released == 5);
    CHECK(r.remarked == 4);  // 10..12 were sent after 9: still on their way, not re-marked
    CHECK(s.box.held() == 7);
    CHECK(s.box.unsent() == 4);
    s.box.push(reading(13));
    std::size_t before = s.broker.sent.size();
    CHECK(s.box.pump(s.broker, 1000, 100) == 5);
    CHECK(seqs_sent(s.broker, before) == std::vector<uint32_t>{1, 2, 3, 4, 13});

    // The resends were sent after 10..12, so confirming them alone re-marks 10..12 in turn.
    r = s.box.on_confirmation(confirm(kBoot, {{1, 4}}), 2000);
    CHECK(r.released == 4);
    CHECK(r.remarked == 3);
    before = s.broker.sent.size();
    CHECK(s.box.pump(s.broker, 2000, 100) == 3);
    CHECK(seqs_sent(s.broker, before) == range(10, 12));
    s.box.on_confirmation(confirm(kBoot, {{10, 13}}), 3000);
    CHECK(s.box.held() == 0);
  }

  TEST_CASE("rule 3: confirmations out of order within the reorder window re-mark nothing; the gap is resent after it") {
    // Gateway replicas confirm independently (docs/scale-out.md): 5..9 may be confirmed by one
    // replica before another confirms 1..4, although nothing was lost.
    Sent s(1, 12, 0, ferry::OutboxOptions{});
    ferry::ConfirmResult r = s.box.on_confirmation(confirm(kBoot, {{5, 9}}), 999);
    CHECK(r.released == 5);
    CHECK(r.remarked == 0);  // 1..4 were sent 999 ms ago: inside the 1000 ms window
    CHECK(s.box.unsent() == 0);
    r = s.box.on_confirmation(confirm(kBoot, {{1, 4}}), 1200);
    CHECK(r.released == 4);
    CHECK(r.remarked == 0);
    // 10 really was lost: once it is older than the window, the next confirmation re-marks it.
    r = s.box.on_confirmation(confirm(kBoot, {{11, 11}}), 1500);
    CHECK(r.remarked == 1);
    std::size_t before = s.broker.sent.size();
    CHECK(s.box.pump(s.broker, 1500, 100) == 1);
    CHECK(seqs_sent(s.broker, before) == std::vector<uint32_t>{10});
    CHECK(s.box.held() == 2);  // 10 (resent) and 12 (on its way)
  }

  TEST_CASE("rule 3: reorder_ms = 0 re-marks at once") {
    ferry::OutboxOptions opts;
    opts.reorder_ms = 0;
    Sent s(1, 3, 0, opts);
    CHECK(s.box.on_confirmation(confirm(kBoot, {{3, 3}}), 0).remarked == 2);
  }

  TEST_CASE("rule 4: after a reconnect every unconfirmed reading is sent again, in order") {
    Sent s(0, 5);
    s.box.on_confirmation(confirm(kBoot, {{0, 1}}), 500);
    s.broker.up = false;  // connection lost
    s.box.push(reading(6));
    s.box.push(reading(7));
    CHECK(s.box.pump(s.broker, 1000, 100) == 0);
    s.broker.up = true;
    s.box.on_connected();
    CHECK(s.box.unsent() == 6);
    std::size_t before = s.broker.sent.size();
    CHECK(s.box.pump(s.broker, 2000, 3) == 3);  // the per-call cap still applies
    CHECK(s.box.pump(s.broker, 2001, 100) == 3);
    CHECK(seqs_sent(s.broker, before) == range(2, 7));
    CHECK(s.box.held() == 6);
  }

  TEST_CASE("rule 1: a full outbox drops the oldest reading, sent or not, and counts it") {
    fakes::FakeTransport broker;
    ferry::OutboxOptions opts;
    opts.capacity = 5;
    ferry::Outbox box(kTopic, kBoot, opts);
    box.on_connected();
    for (uint32_t s = 0; s < 3; ++s) CHECK_FALSE(box.push(reading(s)));
    REQUIRE(box.pump(broker, 0, 100) == 3);  // 0..2 sent, waiting for their confirmation
    broker.up = false;
    for (uint32_t s = 3; s < 5; ++s) CHECK_FALSE(box.push(reading(s)));
    for (uint32_t s = 5; s < 9; ++s) CHECK(box.push(reading(s)));
    CHECK(box.held() == 5);
    CHECK(box.dropped() == 4);
    CHECK(box.unsent() == 5);  // 0..2 (sent) and 3 (unsent) went
    broker.up = true;
    box.on_connected();
    std::size_t before = broker.sent.size();
    CHECK(box.pump(broker, 1000, 100) == 5);
    CHECK(seqs_sent(broker, before) == range(4, 8));
    box.on_confirmation(confirm(kBoot, {{4, 8}}), 1000);
    CHECK(box.held() == 0);
    CHECK(box.dropped() == 4);
  }

  TEST_CASE("rule 5: the oldest unconfirmed reading is probed after 10 s, then every 20, 40, ... up to 5 min") {
    Sent s(0, 2);
    s.box.on_confirmation(confirm(kBoot - 1, {{0, 100}}), 0);  // retained, earlier boot: gateway mode
    const uint32_t due[] = {10000, 30000, 70000, 150000, 310000, 610000, 910000};
    uint32_t previous = 0;
    for (uint32_t at : due) {
      std::size_t before = s.broker.sent.size();
      CHECK(s.box.pump(s.broker, at - 1, 100) == 0);
      CHECK(s.box.pump(s.broker, at, 100) == 1);
      CHECK(seqs_sent(s.broker, before) == std::vector<uint32_t>{0});
      CHECK(s.box.ack_timeout_ms() == std::min<uint32_t>((at - previous) * 2, 300000));
      previous = at;
    }
    CHECK(s.box.probes() == 7);
    CHECK(s.box.held() == 3);
  }

  TEST_CASE("rule 5: a confirmation resets the probe period; the probe's confirmation resends what came before") {
    Sent s(0, 3);
    s.box.on_confirmation(confirm(kBoot - 1, {}), 0);
    CHECK(s.box.pump(s.broker, 10000, 100) == 1);  // probe 1: seq 0 again
    CHECK(s.box.pump(s.broker, 30000, 100) == 1);  // probe 2
    CHECK(s.box.ack_timeout_ms() == 40000);
    // The broker had lost 0..3; the gateway commits the probe and confirms it.
    ferry::ConfirmResult r = s.box.on_confirmation(confirm(kBoot, {{0, 0}}), 31000);
    CHECK(r.released == 1);
    CHECK(r.remarked == 3);
    CHECK(s.box.ack_timeout_ms() == 10000);
    std::size_t before = s.broker.sent.size();
    CHECK(s.box.pump(s.broker, 31000, 100) == 3);
    CHECK(seqs_sent(s.broker, before) == range(1, 3));
    // The period starts again at 10 s from the resend of the new oldest.
    CHECK(s.box.pump(s.broker, 40999, 100) == 0);
    before = s.broker.sent.size();
    CHECK(s.box.pump(s.broker, 41000, 100) == 1);
    CHECK(seqs_sent(s.broker, before) == std::vector<uint32_t>{1});
    // A confirmation that releases nothing still shows the gateway is back: the period resets.
    CHECK(s.box.ack_timeout_ms() == 20000);
    s.box.on_confirmation(confirm(kBoot, {{90, 99}}), 42000);
    CHECK(s.box.ack_timeout_ms() == 10000);
    CHECK(s.box.pump(s.broker, 51999, 100) == 0);
    CHECK(s.box.pump(s.broker, 52000, 100) == 1);
  }

  TEST_CASE("rule 6: no confirmation within 60 s of the first PUBACK: release on PUBACK until one comes") {
    Sent s(0, 0, 1000);  // an old gateway: it never confirms
    CHECK(s.box.pump(s.broker, 11000, 100) == 1);  // rule 5 still probes meanwhile
    s.box.push(reading(1));
    CHECK(s.box.pump(s.broker, 20000, 100) == 1);
    CHECK(s.box.pump(s.broker, 31000, 100) == 1);  // second probe
    CHECK(s.box.pump(s.broker, 60999, 100) == 0);
    CHECK(s.box.mode() == ferry::ConfirmMode::Gateway);
    CHECK(s.box.held() == 2);
    CHECK(s.box.pump(s.broker, 61000, 100) == 0);
    CHECK(s.box.mode() == ferry::ConfirmMode::Broker);
    CHECK(std::string(ferry::to_string(s.box.mode())) == "broker");
    CHECK(s.box.held() == 0);  // what was PUBACKed is released
    s.box.push(reading(2));
    CHECK(s.box.pump(s.broker, 62000, 100) == 1);
    CHECK(s.box.held() == 0);
    s.box.push(reading(3));
    s.broker.up = false;
    CHECK(s.box.pump(s.broker, 63000, 100) == 0);
    CHECK(s.box.held() == 1);  // not PUBACKed, not released
    s.broker.up = true;
    s.box.on_connected();
    CHECK(s.box.mode() == ferry::ConfirmMode::Broker);  // a new connection alone does not switch back
    CHECK(s.box.pump(s.broker, 64000, 100) == 1);
    CHECK(s.box.held() == 0);
    CHECK(s.box.probes() == 2);

    s.box.on_confirmation(confirm(kBoot, {{3, 3}}), 400000);  // the gateway was upgraded
    CHECK(s.box.mode() == ferry::ConfirmMode::Gateway);
    CHECK(std::string(ferry::to_string(s.box.mode())) == "gateway");
    s.box.push(reading(4));
    CHECK(s.box.pump(s.broker, 400001, 100) == 1);
    CHECK(s.box.held() == 1);
  }

  TEST_CASE("rule 6: the 60 s count from the first PUBACK of each connection") {
    Sent s(0, 0, 1000);
    s.broker.up = false;
    CHECK(s.box.pump(s.broker, 50000, 100) == 0);
    s.broker.up = true;
    s.box.on_connected();
    CHECK(s.box.pump(s.broker, 50000, 100) == 1);  // seq 0 again: the first PUBACK of this connection
    s.box.pump(s.broker, 61000, 100);
    CHECK(s.box.mode() == ferry::ConfirmMode::Gateway);  // 60 s after the first connection's PUBACK
    s.box.pump(s.broker, 109999, 100);
    CHECK(s.box.mode() == ferry::ConfirmMode::Gateway);
    CHECK(s.box.held() == 1);
    s.box.pump(s.broker, 110000, 100);
    CHECK(s.box.mode() == ferry::ConfirmMode::Broker);
    CHECK(s.box.held() == 0);
  }

  TEST_CASE("rule 6: a confirmation heard on an earlier connection does not count for this one") {
    Sent s(0, 0, 1000);
    s.box.on_confirmation(confirm(kBoot - 1, {}), 2000);
    s.box.pump(s.broker, 70000, 100);
    CHECK(s.box.mode() == ferry::ConfirmMode::Gateway);
    s.box.on_connected();  // no retained confirmation this time (cleared, or another gateway)
    s.box.pump(s.broker, 70000, 100);
    s.box.pump(s.broker, 129999, 100);
    CHECK(s.box.mode() == ferry::ConfirmMode::Gateway);
    s.box.pump(s.broker, 130000, 100);
    CHECK(s.box.mode() == ferry::ConfirmMode::Broker);
  }

  TEST_CASE("a confirmation for another boot releases nothing, yet shows the gateway confirms") {
    Sent s(0, 4);
    ferry::ConfirmResult r = s.box.on_confirmation(confirm(kBoot + 1, {{0, 4}}), 500);
    CHECK_FALSE(r.current_boot);
    CHECK(r.released == 0);
    CHECK(r.remarked == 0);
    r = s.box.on_confirmation(confirm(kBoot - 1, {{0, 4}}), 500);
    CHECK(r.released == 0);
    CHECK(s.box.held() == 5);
    CHECK(s.box.unsent() == 0);
    s.box.pump(s.broker, 120000, 100);  // well past 60 s: no fallback, a retained ack was heard
    CHECK(s.box.mode() == ferry::ConfirmMode::Gateway);
    CHECK(s.box.held() == 5);
  }

  TEST_CASE("duplicate, overlapping and unknown confirmations are harmless") {
    Sent s(0, 9);
    CHECK(s.box.on_confirmation(confirm(kBoot, {{0, 4}}), 100).released == 5);
    ferry::ConfirmResult r = s.box.on_confirmation(confirm(kBoot, {{0, 4}}), 200);
    CHECK(r.released == 0);
    CHECK(r.remarked == 0);
    r = s.box.on_confirmation(confirm(kBoot, {{3, 6}}), 300);
    CHECK(r.released == 2);
    CHECK(r.remarked == 0);
    r = s.box.on_confirmation(confirm(kBoot, {{1000, 2000}, {4000000000u, 4294967295u}}), 400);
    CHECK(r.released == 0);
    CHECK(s.box.held() == 3);
    CHECK(s.box.unsent() == 0);
    CHECK(s.box.on_confirmation(confirm(kBoot, {{0, 4294967295u}}), 500).released == 3);
    CHECK(s.box.held() == 0);
    CHECK(s.box.released() == 10);
  }
}

TEST_SUITE("outbox_ack") {
  TEST_CASE("a payload from ack is parsed and applied; a malformed one changes nothing") {
    Sent s(0, 2, 1000);
    std::string why;
    ferry::ConfirmResult r;
    CHECK_FALSE(s.box.on_ack_payload("", 2000, &why, &r));  // a cleared retained message
    CHECK_FALSE(why.empty());
    CHECK_FALSE(s.box.on_ack_payload(R"({"boot":7,"seqs":[[2,1]]})", 2000, &why));
    CHECK(why == "a range has from > to");
    s.box.pump(s.broker, 61000, 100);  // malformed payloads are not confirmations: rule 6 applies
    CHECK(s.box.mode() == ferry::ConfirmMode::Broker);
    CHECK(s.box.held() == 0);

    s.box.push(reading(3));
    s.box.push(reading(4));
    s.broker.up = false;
    CHECK_FALSE(s.box.on_ack_payload(R"({"boot":7,"seqs":[[3,3]],"boot":7})", 62000, &why));
    CHECK(s.box.mode() == ferry::ConfirmMode::Broker);
    REQUIRE(s.box.on_ack_payload(R"({"boot":7,"seqs":[[3,3]]})", 62000, &why, &r));
    CHECK(r.current_boot);
    CHECK(r.released == 1);
    CHECK(s.box.mode() == ferry::ConfirmMode::Gateway);
    CHECK(s.box.held() == 1);
  }


  TEST_CASE("parses the contract's payload") {
    ferry::Confirmation c;
    std::string why;
    REQUIRE(ferry::parse_confirmation(R"({"boot":7,"seqs":[[0,4],[5,5],[9,4294967295]]})", c, &why));
    CHECK(c.boot == 7);
    REQUIRE(c.seqs.size() == 3);
    CHECK((c.seqs[0].from == 0 && c.seqs[0].to == 4));
    CHECK((c.seqs[1].from == 5 && c.seqs[1].to == 5));  // adjacent ranges are disjoint
    CHECK((c.seqs[2].from == 9 && c.seqs[2].to == 4294967295u));

    REQUIRE(ferry::parse_confirmation(R"( {"seqs": [], "boot": 4294967295, "gateway": "ferry-gateway-2"} )", c));
    CHECK(c.boot == 4294967295u);
    CHECK(c.seqs.empty());

    std::string longest = R"({"boot":4294967295,"seqs":[)";
    for (uint32_t i = 0; i < ferry::kMaxConfirmationRanges; ++i) {
      if (i) longest += ',';
      longest += "[4294967295,4294967295]";
    }
    longest += "]}";
    CHECK(longest.size() == ferry::kMaxConfirmationBytes);
    CHECK_FALSE(ferry::parse_confirmation(longest, c));  // every range is the same: not ascending
    longest = R"({"boot":4294967295,"seqs":[)";
    for (uint32_t i = 0; i < ferry::kMaxConfirmationRanges; ++i) {
      if (i) longest += ',';
      longest += "[" + std::to_string(4000000000u + 2 * i) + "," + std::to_string(4000000000u + 2 * i) + "]";
    }
    longest += "]}";
    CHECK(ferry::parse_confirmation(longest, c));
    CHECK(c.seqs.size() == 32);
  }

  TEST_CASE("rejects malformed payloads without crashing") {
    std::string too_many = R"({"boot":7,"seqs":[)";
    for (uint32_t i = 0; i <= ferry::kMaxConfirmationRanges; ++i) {
      if (i) too_many += ',';
      too_many += "[" + std::to_string(2 * i) + "," + std::to_string(2 * i) + "]";
    }
    too_many += "]}";
    const std::string bad[] = {
        "",
        "null",
        "7",
        "[]",
        "{}",
        R"({"boot":7})",
        R"({"seqs":[[1,2]]})",
        R"({"boot":-1,"seqs":[]})",
        R"({"boot":"7","seqs":[]})",
        R"({"boot":7.0,"seqs":[]})",
        R"({"boot":1e1,"seqs":[]})",
        R"({"boot":4294967296,"seqs":[]})",
        R"({"boot":null,"seqs":[]})",
        R"({"boot":7,"seqs":null})",
        R"({"boot":7,"seqs":{"from":1,"to":2}})",
        R"({"boot":7,"seqs":[1,2]})",
        R"({"boot":7,"seqs":[[1]]})",
        R"({"boot":7,"seqs":[[1,2,3]]})",
        R"({"boot":7,"seqs":[[]]})",
        R"({"boot":7,"seqs":[["1",2]]})",
        R"({"boot":7,"seqs":[[1,null]]})",
        R"({"boot":7,"seqs":[[1,2.5]]})",
        R"({"boot":7,"seqs":[[-1,2]]})",
        R"({"boot":7,"seqs":[[1,4294967296]]})",
        R"({"boot":7,"seqs":[[[1,2]]]})",
        R"({"boot":7,"seqs":[[2,1]]})",
        R"({"boot":7,"seqs":[[5,9],[1,4]]})",
        R"({"boot":7,"seqs":[[1,5],[5,9]]})",
        R"({"boot":7,"seqs":[[1,9],[3,4]]})",
        R"({"boot":7,"seqs":[[1,2],[1,2]]})",
        R"({"boot":7,"boot":8,"seqs":[]})",
        R"({"boot":7,"seqs":[],})",
        R"({"boot":7,"seqs":[]} x)",
        R"({"boot":7,"seqs":[[1,2],]})",
        std::string("{\"boot\":7,\"seqs\":[[1,2]]}\0", 27),
        too_many,
        std::string(3000, ' ') + R"({"boot":7,"seqs":[]})",
    };
    for (const std::string& payload : bad) {
      ferry::Confirmation c;
      c.boot = 99;
      c.seqs.push_back({1, 2});
      std::string why;
      CHECK_MESSAGE(!ferry::parse_confirmation(payload, c, &why), payload);
      CHECK_MESSAGE(!why.empty(), payload);
      CHECK(c.boot == 0);  // nothing half-parsed is left behind
      CHECK(c.seqs.empty());
    }
  }
}
