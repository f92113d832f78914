#include "fakes/doctest.h"
#include "ferry/json.h"

using ferry::json::parse;
using ferry::json::Type;
using ferry::json::Value;

TEST_SUITE("json") {
  TEST_CASE("parses objects, arrays and scalars with exact integer lexemes") {
    Value v;
    REQUIRE(parse(R"( {"a": [1, -2.5e3, true, false, null], "b": "x\u00e9\ud83d\ude00", "n": 18446744073709551615} )", v));
    REQUIRE(v.is(Type::Object));
    const Value* a = v.get("a");
    REQUIRE(a);
    REQUIRE(a->items.size() == 5);
    CHECK(a->items[1].text == "-2.5e3");
    CHECK(a->items[2].boolean);
    CHECK(a->items[4].is(Type::Null));
    CHECK(v.get("b")->text == "x\xC3\xA9\xF0\x9F\x98\x80");
    uint64_t n = 0;
    CHECK(v.get("n")->as_uint(n));
    CHECK(n == UINT64_MAX);
    CHECK(v.get("missing") == nullptr);
  }

  TEST_CASE("as_uint refuses negatives, fractions, exponents, overflow and values above the limit") {
    for (const char* s : {"-1", "1.0", "1e3", "18446744073709551616"}) {
      Value v;
      REQUIRE(parse(s, v));
      uint64_t n;
      CHECK_MESSAGE(!v.as_uint(n), s);
    }
    Value v;
    REQUIRE(parse("101", v));
    uint64_t n;
    CHECK(!v.as_uint(n, 100));
    CHECK(v.as_uint(n, 101));
  }

  TEST_CASE("rejects what lenient parsers accept") {
    const char* bad[] = {
        "",  "{", "{\"a\":1,}", "[1,]", "{\"a\":1 \"b\":2}", "01", "-", "1.", ".5", "1e", "+1", "NaN",
        "Infinity", "{'a':1}", "{\"a\":1}//c", "/*c*/1", "\"\x01\"", "\"\\x\"", "\"\\ud800\"",
        "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\xC0\xAF\"", "\"\xED\xA0\x80\"", "\"\xF4\x90\x80\x80\"",
        "\"abc", "tru", "nul", "[1] 2", "{\"a\":1}}", "\"\\u12\"",
    };
    for (const char* s : bad) {
      Value v;
      CHECK_MESSAGE(!parse(s, v), "accepted: ", s);
    }
  }

  TEST_CASE("rejects duplicate keys and names the key and the offset") {
    Value v;
    std::string err;
    CHECK(!parse(R"({"hw":"a","hw":"b"})", v, &err));
    CHECK(err == "duplicate key \"hw\" at byte 10");
  }

  TEST_CASE("enforces the size and depth limits") {
    ferry::json::Limits lim;
    lim.max_depth = 3;
    Value v;
    CHECK(parse("[[[1]]]", v, nullptr, lim));
    CHECK(!parse("[[[[1]]]]", v, nullptr, lim));
    lim.max_bytes = 4;
    CHECK(!parse("12345", v, nullptr, lim));
    std::string deep(100000, '[');
    CHECK(!parse(deep, v));  // default depth 16: no stack exhaustion
  }

  TEST_CASE("append_string escapes quotes, backslashes and control characters") {
    std::string out;
    ferry::json::append_string(out, std::string("a\"b\\c\n\x01\x7f", 8));
    CHECK(out == "\"a\\\"b\\\\c\\n\\u0001\\u007f\"");
    Value v;
    REQUIRE(parse(out, v));
    CHECK(v.text == std::string("a\"b\\c\n\x01\x7f", 8));
  }
}
