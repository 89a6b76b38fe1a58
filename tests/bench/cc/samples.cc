#include "tests/bench/cc/samples.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace herald::bench {

void AppendMicrosArray(const std::vector<int64_t>& ns, std::string* out) {
  out->reserve(out->size() + ns.size() * 10 + 2);
  out->push_back('[');
  char buf[32];
  for (size_t i = 0; i < ns.size(); ++i) {
    if (i > 0) out->push_back(',');
    int64_t v = ns[i];
    // The magnitude as unsigned, so that INT64_MIN does not overflow.
    uint64_t mag = v < 0 ? 0 - static_cast<uint64_t>(v) : v;
    const uint64_t whole = mag / 1000;
    uint64_t frac = mag % 1000;
    int n;
    if (frac == 0) {
      n = std::snprintf(buf, sizeof(buf), "%s%llu", v < 0 ? "-" : "",
                        static_cast<unsigned long long>(whole));
    } else {
      int digits = 3;
      while (frac % 10 == 0) {
        frac /= 10;
        --digits;
      }
      n = std::snprintf(buf, sizeof(buf), "%s%llu.%0*llu", v < 0 ? "-" : "",
                        static_cast<unsigned long long>(whole), digits,
                        static_cast<unsigned long long>(frac));
    }
    out->append(buf, n);
  }
  out->push_back(']');
}

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\r':
        out->append("\\r");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view text) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  const bool written =
      std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) {
    return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot rename ", tmp, " to ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace herald::bench
