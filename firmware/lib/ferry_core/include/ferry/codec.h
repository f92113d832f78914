// Strict base64 and hex codecs for envelopes and digests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

/// Decodes canonical RFC 4648 §4 base64 (standard alphabet, '=' padding required, no whitespace,
/// unused bits zero), which is what Node's Buffer#toString('base64') writes. Anything else is
/// refused, so one envelope has exactly one byte representation.
bool base64_decode(std::string_view in, std::vector<uint8_t>& out);

std::string base64_encode(const uint8_t* data, std::size_t len);

/// Lower-case hex of `len` bytes.
std::string hex_encode(const uint8_t* data, std::size_t len);

/// Decodes exactly `len` bytes from 2*len hex digits (either case).
bool hex_decode(std::string_view in, uint8_t* out, std::size_t len);

}  // namespace ferry
