#include "bench/fault_resolver.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <memory>

#include "fixtures/errno_name.h"
#include "fixtures/uapi/uffd_mainline.h"

namespace gmembench {

gmem::Result<std::unique_ptr<FaultResolver>> FaultResolver::Start(int uffd, Mode mode, Region region) {
  int stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop < 0) return gmem::Error("eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK)", errno);
  std::unique_ptr<FaultResolver> r(new FaultResolver(uffd, mode, region, gmem::FileDescriptor(stop)));
  r->thread_ = std::thread([p = r.get()] { p->Loop(); });
  return r;
}

FaultResolver::~FaultResolver() {
  uint64_t one = 1;
  if (write(stop_.get(), &one, sizeof one) != sizeof one) std::abort();  // would hang the join
  thread_.join();
}

std::string FaultResolver::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void FaultResolver::SetError(std::string text) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.empty()) return;
    error_ = std::move(text);
  }
  // Unregistering wakes every waiting fault; the kernel then resolves them itself.
  uffdio_range range{region_.base, region_.length};
  ioctl(uffd_, UFFDIO_UNREGISTER, &range);
}

bool FaultResolver::Resolve(uintptr_t address) {
  uintptr_t page = address & ~(uintptr_t{region_.page} - 1);
  if (page < region_.base || page >= region_.base + region_.length) {
    SetError(fmt::format("fault at {:#x} outside the registered range", address));
    return false;
  }
  long ret;
  const char* call;
  if (mode_ == Mode::kCopy) {
    uffdio_copy copy{};
    copy.dst = page;
    copy.src = reinterpret_cast<uintptr_t>(region_.source + (page - region_.base) % region_.source_length);
    copy.len = region_.page;
    ret = ioctl(uffd_, UFFDIO_COPY, &copy);
    call = "UFFDIO_COPY";
  } else {
    uffdio_continue cont{};
    cont.range = {page, region_.page};
    ret = ioctl(uffd_, UFFDIO_CONTINUE, &cont);
    call = "UFFDIO_CONTINUE";
  }
  // EEXIST: another fault on the same page was resolved first. The kernel leaves this waiter
  // asleep, so wake it.
  if (ret < 0 && errno == EEXIST) {
    uffdio_range range{page, region_.page};
    ret = ioctl(uffd_, UFFDIO_WAKE, &range);
    call = "UFFDIO_WAKE";
  }
  if (ret < 0) {
    SetError(fmt::format("{}(uffd {}, {:#x}, len {:#x}) = -1 {}", call, uffd_, page, region_.page,
                         gmem::ErrnoDescription(errno)));
    return false;
  }
  resolved_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void FaultResolver::Loop() {
  pollfd fds[2] = {{uffd_, POLLIN, 0}, {stop_.get(), POLLIN, 0}};
  uffd_msg msgs[16];
  while (true) {
    int ready = poll(fds, 2, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return SetError(fmt::format("poll(uffd {}) = -1 {}", uffd_, gmem::ErrnoDescription(errno)));
    if (fds[1].revents) return;
    if (fds[0].revents & (POLLERR | POLLHUP))
      return SetError(fmt::format("poll(uffd {}) reported POLLERR/POLLHUP", uffd_));
    ssize_t n = read(uffd_, msgs, sizeof msgs);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return SetError(fmt::format("read(uffd {}) = -1 {}", uffd_, gmem::ErrnoDescription(errno)));
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(uffd_msg); ++i) {
      if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
      if (!Resolve(msgs[i].arg.pagefault.address)) return;
    }
  }
}

}  // namespace gmembench
