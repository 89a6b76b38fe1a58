#include "server/kube/stream_parser.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace herald::kube {

bool LineSplitter::Feed(absl::string_view chunk) {
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    if (nl == absl::string_view::npos) {
      partial_.append(chunk.data(), chunk.size());
      return true;
    }
    absl::string_view line;
    if (partial_.empty()) {
      line = chunk.substr(0, nl);
    } else {
      partial_.append(chunk.data(), nl);
      line = partial_;
    }
    chunk.remove_prefix(nl + 1);
    line = absl::StripAsciiWhitespace(line);
    bool go_on = line.empty() || on_line_(line);
    partial_.clear();
    if (!go_on) return false;
  }
  return true;
}

bool ListItemSplitter::Feed(absl::string_view chunk) {
  if (!status_.ok()) return false;
  const char* p = chunk.data();
  const char* end = p + chunk.size();
  // Start of the run of bytes that goes to the current sink (item or
  // envelope), appended in one go.
  const char* run = p;
  auto flush = [&](const char* upto) {
    if (upto > run) {
      if (in_item_) {
        item_.append(run, upto - run);
      } else if (!in_items_ || depth_ < 2) {
        envelope_.append(run, upto - run);
      }
    }
    run = upto;
  };
  for (; p < end; ++p) {
    const char c = *p;
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
        if (depth_ == 1 && !in_item_) last_key_ = string_;
      } else if (depth_ == 1 && !in_item_ && string_.size() < 64) {
        string_ += c;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string_ = true;
        if (depth_ == 1) string_.clear();
        break;
      case '{':
      case '[':
        if (!started_) {
          if (c != '{') {
            status_ = absl::InvalidArgumentError("list: not a JSON object");
            return false;
          }
          started_ = true;
        }
        if (in_items_ && depth_ == 2 && !in_item_) {
          // An item starts: the bytes before it (a comma) belong nowhere.
          run = p;
          in_item_ = true;
        }
        if (depth_ == 1 && c == '[' && last_key_ == "items") {
          flush(p + 1);
          in_items_ = true;
        }
        ++depth_;
        break;
      case '}':
      case ']':
        --depth_;
        if (depth_ < 0) {
          status_ = absl::InvalidArgumentError("list: unbalanced JSON");
          return false;
        }
        if (in_item_ && depth_ == 2) {
          item_.append(run, p + 1 - run);
          run = p + 1;
          in_item_ = false;
          bool go_on = on_item_(item_);
          item_.clear();
          if (!go_on) return false;
        } else if (in_items_ && depth_ == 1) {
          // The items array closes: keep "]" in the envelope.
          run = p;
          in_items_ = false;
        }
        break;
      default:
        if (in_items_ && depth_ == 2 && !in_item_ &&
            !absl::ascii_isspace(static_cast<unsigned char>(c)) && c != ',') {
          // A scalar item (not an object): lists of objects only.
          status_ =
              absl::InvalidArgumentError("list: an item is not an object");
          return false;
        }
        break;
    }
    if (in_items_ && depth_ == 2 && !in_item_) run = p + 1;
  }
  flush(end);
  return true;
}

absl::Status ListItemSplitter::Finish() {
  if (!status_.ok()) return status_;
  if (!started_ || depth_ != 0 || in_string_) {
    return absl::InvalidArgumentError(
        absl::StrCat("list: the response ended early (depth ", depth_, ")"));
  }
  return absl::OkStatus();
}

}  // namespace herald::kube
