// Loads libnccl at run time (nccl_api.hpp). The loaded libraries are the one piece of
// process-wide state in libeplb: a dlopen'ed library cannot be owned by any handle, because
// communicators made from it may outlive each other, and NCCL must never be unloaded while a
// communicator lives. Libraries are therefore kept until the process exits.
#include <dlfcn.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "error.hpp"
#include "nccl_api.hpp"

namespace eplb::nccl {

namespace {

struct Loaded {
  std::mutex mutex;
  std::vector<std::unique_ptr<NcclApi>> apis;  // one per path that loaded; never shrinks
};

Loaded& loaded() {
  static Loaded instance;  // NOLINT: see the file comment
  return instance;
}

template <typename Function>
void resolve(void* library, const std::string& path, const char* name, Function& out) {
  dlerror();
  void* symbol = dlsym(library, name);
  if (symbol == nullptr) {
    const char* reason = dlerror();
    fail(Errc::no_nccl, "NCCL library \"", path, "\" lacks the symbol ", name, ": ",
         reason != nullptr ? reason : "not found", " (libeplb needs NCCL 2.7 or later)");
  }
  out = reinterpret_cast<Function>(symbol);  // NOLINT: dlsym's documented use
}

std::unique_ptr<NcclApi> load(const std::string& path) {
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* reason = dlerror();
    fail(Errc::no_nccl, "cannot load NCCL from \"", path,
         "\": ", reason != nullptr ? reason : "dlopen failed",
         " (install NCCL 2.x or set EPLB_NCCL_LIBRARY to the path of libnccl.so.2)");
  }
  auto nccl = std::make_unique<NcclApi>();
  nccl->path = path;
  try {
    resolve(library, path, "ncclGetVersion", nccl->GetVersion);
    resolve(library, path, "ncclGetErrorString", nccl->GetErrorString);
    resolve(library, path, "ncclGetUniqueId", nccl->GetUniqueId);
    resolve(library, path, "ncclCommInitRank", nccl->CommInitRank);
    resolve(library, path, "ncclCommDestroy", nccl->CommDestroy);
    resolve(library, path, "ncclCommAbort", nccl->CommAbort);
    resolve(library, path, "ncclCommCount", nccl->CommCount);
    resolve(library, path, "ncclCommUserRank", nccl->CommUserRank);
    resolve(library, path, "ncclCommCuDevice", nccl->CommCuDevice);
    resolve(library, path, "ncclCommGetAsyncError", nccl->CommGetAsyncError);
    resolve(library, path, "ncclAllReduce", nccl->AllReduce);
    resolve(library, path, "ncclSend", nccl->Send);
    resolve(library, path, "ncclRecv", nccl->Recv);
    resolve(library, path, "ncclGroupStart", nccl->GroupStart);
    resolve(library, path, "ncclGroupEnd", nccl->GroupEnd);
    // Optional: absent before NCCL 2.14.
    nccl->CommFinalize = reinterpret_cast<decltype(nccl->CommFinalize)>(  // NOLINT: dlsym
        dlsym(library, "ncclCommFinalize"));
  } catch (...) {
    dlclose(library);  // nothing of it is in use yet
    throw;
  }
  int version = 0;
  if (nccl->GetVersion(&version) != ncclSuccess) version = 0;
  // NCCL 2.x: codes below 2.9 are X*1000+Y*100+Z, from 2.9 on X*10000+Y*100+Z; 1.x and 3.x
  // have other ABIs than the one nccl_api.hpp declares.
  if (version < 2000 || (version >= 3000 && version < 20900) || version >= 30000) {
    dlclose(library);
    fail(Errc::no_nccl, "NCCL library \"", path, "\" reports version code ", version,
         "; libeplb needs NCCL 2.x");
  }
  nccl->version = version;
  return nccl;
}

}  // namespace

std::string library_path() {
  const char* path = std::getenv("EPLB_NCCL_LIBRARY");  // NOLINT(concurrency-mt-unsafe)
  return path != nullptr && *path != '\0' ? std::string(path) : std::string("libnccl.so.2");
}

const NcclApi& api() {
  const std::string path = library_path();
  Loaded& state = loaded();
  std::lock_guard lock(state.mutex);
  for (const auto& nccl : state.apis) {
    if (nccl->path == path) return *nccl;
  }
  state.apis.push_back(load(path));
  return *state.apis.back();
}

void check(const NcclApi& nccl, ncclResult_t result, const char* what) {
  if (result == ncclSuccess) return;
  // NCCL's detailed text (ncclGetLastError) is a process-wide buffer of its last warning, from
  // any thread or communicator, never cleared: not appended here, since it may describe another
  // failure. NCCL_DEBUG=WARN prints each warning as it happens.
  const char* text = nccl.GetErrorString != nullptr ? nccl.GetErrorString(result) : nullptr;
  fail(Errc::nccl, what, " failed: ", text != nullptr ? text : "unknown NCCL error",
       " (ncclResult_t ", static_cast<int>(result), "; NCCL_DEBUG=WARN prints NCCL's reason)");
}

bool check_enqueue(const NcclApi& nccl, ncclResult_t result, const char* what) {
  if (result == ncclInProgress) return true;
  check(nccl, result, what);
  return false;
}

}  // namespace eplb::nccl
