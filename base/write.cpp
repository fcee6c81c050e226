#include "base/write.hpp"

#include <utility>

namespace sluice::base {

namespace {
struct Request {
  uv_write_t req;
  std::string bytes;
  PooledBlock block;
  WriteDone done;
};
}  // namespace

int write(uv_stream_t* to, std::string bytes, PooledBlock block, size_t block_len, WriteDone done) {
  if (block.get() == nullptr) block_len = 0;
  if (bytes.empty() && block_len == 0) return 0;
  auto* r = new Request{{}, std::move(bytes), std::move(block), done};
  r->req.data = r;
  uv_buf_t bufs[2];
  unsigned n = 0;
  if (!r->bytes.empty()) bufs[n++] = uv_buf_init(r->bytes.data(), static_cast<unsigned>(r->bytes.size()));
  if (block_len != 0) bufs[n++] = uv_buf_init(r->block.get(), static_cast<unsigned>(block_len));
  int rc = uv_write(&r->req, to, bufs, n, [](uv_write_t* req, int status) {
    auto* w = static_cast<Request*>(req->data);
    const WriteDone d = w->done;
    delete w;  // the block goes back to its pool before the owner hears of it
    if (d.fn != nullptr) d.fn(d.owner, d.tag, status);
  });
  if (rc < 0) delete r;
  return rc;
}

int write_now(uv_stream_t* to, std::string bytes, WriteDone done) {
  if (!bytes.empty() && uv_stream_get_write_queue_size(to) == 0) {
    uv_buf_t b = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
    const int sent = uv_try_write(to, &b, 1);
    if (sent > 0 && static_cast<size_t>(sent) == bytes.size()) return 0;
    if (sent > 0) bytes.erase(0, static_cast<size_t>(sent));
  }
  return write(to, std::move(bytes), done);
}

}  // namespace sluice::base
