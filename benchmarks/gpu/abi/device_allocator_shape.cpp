// A C++ class with the shape McDit's reader of libtorch's CUDA allocator statistics assumes (CudaAllocatorStats.cs):
// c10::DeviceAllocator's virtual methods in libtorch 2.8-2.11's order, and a DeviceStats of nine StatArrays and
// counters. abi-check.sh compiles it with the system's g++ and has the reader call it, which checks the calling
// convention (hidden result pointer, then 'this', then the device index) and the field offsets without a GPU.
#include <array>
#include <cstddef>
#include <cstdint>

namespace shape {
struct Stat { int64_t current = 0, peak = 0, allocated = 0, freed = 0; };
using StatArray = std::array<Stat, 3>;
struct DeviceStats {
  StatArray allocation, segment, active, inactive_split, allocated_bytes, reserved_bytes, active_bytes,
      inactive_split_bytes, requested_bytes;
  int64_t num_alloc_retries = 0, num_ooms = 0;
  Stat oversize_allocations, oversize_segments;
  int64_t num_sync_all_streams = 0, num_device_alloc = 0, num_device_free = 0, max_split_size = 0;
};

struct Allocator {  // slots 0-5
  virtual ~Allocator() = default;
  virtual void* allocate(size_t n) = 0;
  virtual bool is_simple_data_ptr(const void*) const { return false; }
  virtual void* raw_deleter() const { return nullptr; }
  virtual void copy_data(void*, const void*, size_t) const = 0;
};
struct DeviceAllocator : Allocator {  // slots 6-12
  virtual bool initialized() = 0;
  virtual void emptyCache() = 0;
  virtual void recordStream() = 0;
  virtual DeviceStats getDeviceStats(int8_t device) = 0;
  virtual void resetAccumulatedStats(int8_t device) = 0;
  virtual void resetPeakStats(int8_t device) = 0;
  virtual int getMemoryInfo(int8_t) { return 0; }
};
// Figures that depend on the device index, so a wrong argument order shows.
struct Fake final : DeviceAllocator {
  int64_t allocated = 1000, peak = 5000, reserved = 8000, peak_reserved = 9000;
  void* allocate(size_t) override { return nullptr; }
  void copy_data(void*, const void*, size_t) const override {}
  bool initialized() override { return true; }
  void emptyCache() override {}
  void recordStream() override {}
  DeviceStats getDeviceStats(int8_t device) override {
    DeviceStats s;
    s.allocated_bytes[0] = {allocated + device, peak + device, 0, 0};
    s.reserved_bytes[0] = {reserved + device, peak_reserved + device, 0, 0};
    s.requested_bytes[2].freed = -1;  // the last array's last field: a buffer too small would be overrun
    return s;
  }
  void resetAccumulatedStats(int8_t) override {}
  void resetPeakStats(int8_t) override { peak = allocated; }
};
}  // namespace shape

extern "C" void* mcdit_fake_device_allocator() { return new shape::Fake(); }
extern "C" int mcdit_fake_device_stats_size() { return sizeof(shape::DeviceStats); }
