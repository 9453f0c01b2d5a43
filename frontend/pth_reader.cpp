#include "frontend/pth_reader.h"

#include "frontend/mapped_file.h"

#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "frontend/pickle_reader.h"
#include "frontend/zip_archive.h"

namespace rwkvc {

namespace {

// Storages are viewed as they lie in the file, which is little-endian.
static_assert(std::endian::native == std::endian::little, "PyTorch storages are read as little-endian");

using pickle::Kind;
using pickle::Object;
using pickle::ObjectId;

constexpr std::string_view kRebuildTensor = "torch._utils._rebuild_tensor_v2";
constexpr std::string_view kRebuildParameter = "torch._utils._rebuild_parameter";

struct StorageType {
  std::string_view global;
  DType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", DType::f32}, {"torch.HalfStorage", DType::f16}, {"torch.BFloat16Storage", DType::bf16}};

// Everything a state dict of f32, f16 and bf16 tensors names; nothing else may be named.
constexpr std::string_view kAllowedGlobals[] = {pickle::kOrderedDict,    kRebuildTensor,
                                                kRebuildParameter,       kStorageTypes[0].global,
                                                kStorageTypes[1].global, kStorageTypes[2].global};


// One persistent id: a storage of `numel` elements of `dtype`, the bytes of an archive entry.
struct Storage {
  std::string key;
  DType dtype;
  std::int64_t numel;
  ZipEntryData data;
};

// Where a tensor's elements lie in its storage, as _rebuild_tensor_v2 receives them.
struct Layout {
  std::int64_t offset = 0;
  std::vector<std::int64_t> sizes, strides;
};

std::string describe(const Layout& layout) {
  return fmt::format("shape [{}], strides [{}], offset {}", fmt::join(layout.sizes, ", "),
                     fmt::join(layout.strides, ", "), layout.offset);
}

// Row-major order, ignoring extents of 1 whose stride never matters (as PyTorch does).
bool is_contiguous(const Layout& layout) {
  std::int64_t expected = 1;
  for (std::size_t d = layout.sizes.size(); d-- > 0;) {
    if (layout.sizes[d] == 1) continue;
    if (layout.strides[d] != expected) return false;
    expected *= layout.sizes[d];
  }
  return true;
}

// Gathers the elements of a strided layout into row-major order.
void copy_strided(const Layout& layout, std::size_t element_size, const std::byte* storage, std::byte* out,
                  std::int64_t numel) {
  std::size_t rank = layout.sizes.size();
  std::vector<std::int64_t> index(rank, 0);
  std::int64_t source = layout.offset;
  for (std::int64_t i = 0; i < numel; ++i) {
    std::memcpy(out + static_cast<std::size_t>(i) * element_size,
                storage + static_cast<std::size_t>(source) * element_size, element_size);
    for (std::size_t d = rank; d-- > 0;) {  // odometer: bump the last index, carrying leftwards
      if (++index[d] < layout.sizes[d]) {
        source += layout.strides[d];
        break;
      }
      source -= layout.strides[d] * (layout.sizes[d] - 1);
      index[d] = 0;
    }
  }
}

class PthReader {
 public:
  PthReader(std::span<const std::byte> bytes, std::shared_ptr<const void> owner, const std::string& path)
      : origin_(fmt::format("PyTorch .pth checkpoint '{}'", path)), zip_(bytes, std::move(owner), origin_) {}

  WeightMap read() {
    prefix_ = find_prefix();
    check_byte_order();
    for (const ZipEntry& entry : zip_.entries())  // sizes from the directory, possibly false: saturate
      if (entry.name.starts_with(prefix_ + "/data/") &&
          __builtin_add_overflow(storages_size_, entry.size, &storages_size_))
        storages_size_ = UINT64_MAX;
    const ZipEntry& pickle_entry = *zip_.find(prefix_ + "/data.pkl");
    ZipEntryData pickle_bytes = zip_.read(pickle_entry);
    pickle::Document document = pickle::parse(pickle_bytes.bytes, kAllowedGlobals, origin_ + ": " + pickle_entry.name);
    document_ = &document;

    const Object& root = document.at(document.root());
    if (root.kind != Kind::dict)
      fail(fmt::format("{} holds a {}, not a dict of tensors", pickle_entry.name, pickle::kind_name(root.kind)));
    WeightMap weights;
    for (std::size_t i = 0; i + 1 < root.items.size(); i += 2) {
      const Object& key = document.at(root.items[i]);
      if (key.kind != Kind::string)
        fail(fmt::format("{} has a dict key of type {} (byte {}), not a tensor name", pickle_entry.name,
                         pickle::kind_name(key.kind), key.offset));
      HostTensor t = tensor(key.text, root.items[i + 1]);
      if (!weights.emplace(key.text, std::move(t)).second) fail(fmt::format("tensor '{}' appears twice", key.text));
    }
    document_ = nullptr;
    return weights;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw std::invalid_argument(fmt::format("{}: {}", origin_, why));
  }

  // The one "<prefix>/data.pkl" at the top of the archive; torch names the prefix after the
  // file (PyTorch before 2.0) or "archive".
  std::string find_prefix() const {
    std::vector<std::string> prefixes;
    constexpr std::string_view kPickle = "/data.pkl";
    for (const ZipEntry& entry : zip_.entries()) {
      std::string_view name = entry.name;
      if (name.size() > kPickle.size() && name.ends_with(kPickle) && name.find('/') == name.size() - kPickle.size())
        prefixes.emplace_back(name.substr(0, name.size() - kPickle.size()));
    }
    if (prefixes.empty())
      fail("the zip archive has no <folder>/data.pkl, so it is not a checkpoint written by torch.save");
    if (prefixes.size() > 1)
      fail(
          fmt::format("the zip archive holds {} pickles ({}/data.pkl and {}/data.pkl): which one is the checkpoint is "
                      "ambiguous",
                      prefixes.size(), prefixes[0], prefixes[1]));
    return prefixes[0];
  }

  // Newer torch records the byte order of the storages; only little-endian ones can be viewed.
  void check_byte_order() const {
    const ZipEntry* entry = zip_.find(prefix_ + "/byteorder");
    if (!entry) return;
    ZipEntryData data = zip_.read(*entry);
    std::string_view order(reinterpret_cast<const char*>(data.bytes.data()), data.bytes.size());
    if (order != "little")
      fail(fmt::format("its storages are of byte order '{}'; rwkvc reads little-endian ones", order));
  }

  const Object& at(ObjectId id) const { return document_->at(id); }

  std::int64_t integer(const std::string& name, ObjectId id, std::string_view role) const {
    const Object& o = at(id);
    if (o.kind != Kind::integer)
      fail(fmt::format("tensor '{}' has a {} for its {}, not an int (pickle byte {})", name, pickle::kind_name(o.kind),
                       role, o.offset));
    if (o.integer < 0) fail(fmt::format("tensor '{}' has a negative {}: {}", name, role, o.integer));
    return o.integer;
  }

  std::vector<std::int64_t> integers(const std::string& name, ObjectId id, std::string_view role) const {
    const Object& o = at(id);
    if (o.kind != Kind::tuple)
      fail(fmt::format("tensor '{}' has a {} for its {}, not a tuple (pickle byte {})", name, pickle::kind_name(o.kind),
                       role, o.offset));
    std::vector<std::int64_t> values;
    for (ObjectId item : o.items) values.push_back(integer(name, item, role));
    return values;
  }

  // The arguments of the _rebuild_tensor_v2 call that `id` is, unwrapping a Parameter.
  const Object& rebuild_arguments(const std::string& name, ObjectId id) const {
    const Object* value = &at(id);
    auto callee = [&](const Object& call) { return call.kind == Kind::call ? at(call.items[0]).text : std::string(); };
    if (callee(*value) == kRebuildParameter) {
      const Object& arguments = at(value->items[1]);
      if (arguments.items.empty()) fail(fmt::format("tensor '{}' is a Parameter of nothing", name));
      value = &at(arguments.items[0]);
    }
    if (callee(*value) != kRebuildTensor)
      fail(fmt::format(
          "'{}' is a {} (pickle byte {}), not a tensor", name,
          value->kind == Kind::call ? "call of " + callee(*value) : std::string(pickle::kind_name(value->kind)),
          value->offset));
    const Object& arguments = at(value->items[1]);
    if (arguments.items.size() != 6)
      fail(
          fmt::format("tensor '{}' is rebuilt from {} arguments, not the 6 of storage, offset, size, stride, "
                      "requires_grad and hooks (pickle byte {})",
                      name, arguments.items.size(), value->offset));
    return arguments;
  }

  // ('storage', torch.<Type>Storage, key, location, numel) and the archive entry it names.
  Storage storage(const std::string& name, ObjectId id) {
    const Object& persistent = at(id);
    const Object* record = persistent.kind == Kind::persistent_id ? &at(persistent.items[0]) : nullptr;
    if (!record || record->kind != Kind::tuple || record->items.size() != 5 ||
        at(record->items[0]).kind != Kind::string || at(record->items[0]).text != "storage" ||
        at(record->items[1]).kind != Kind::global || at(record->items[2]).kind != Kind::string)
      fail(
          fmt::format("tensor '{}' has no ('storage', type, key, location, numel) record for its storage (pickle byte "
                      "{})",
                      name, persistent.offset));
    const std::string& type = at(record->items[1]).text;
    const StorageType* storage_type = nullptr;
    for (const StorageType& t : kStorageTypes)
      if (t.global == type) storage_type = &t;
    if (!storage_type) fail(fmt::format("tensor '{}' has storage type {}, which rwkvc does not read", name, type));

    Storage s{at(record->items[2]).text, storage_type->dtype, integer(name, record->items[4], "storage size"), {}};
    std::string entry_name = prefix_ + "/data/" + s.key;
    auto cached = storage_bytes_.find(s.key);
    if (cached == storage_bytes_.end()) {
      const ZipEntry* entry = zip_.find(entry_name);
      if (!entry)
        fail(fmt::format("tensor '{}' needs storage '{}', but the archive has no entry '{}'", name, s.key, entry_name));
      cached = storage_bytes_.emplace(s.key, zip_.read(*entry)).first;
    }
    s.data = cached->second;
    std::uint64_t bytes = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(s.numel), dtype_size(s.dtype), &bytes) ||
        bytes != s.data.bytes.size())
      fail(fmt::format("tensor '{}': storage '{}' should hold {} {} elements, but entry '{}' has {} bytes", name, s.key,
                       s.numel, dtype_name(s.dtype), entry_name, s.data.bytes.size()));
    return s;
  }

  HostTensor tensor(const std::string& name, ObjectId id) {
    const Object& arguments = rebuild_arguments(name, id);
    Storage s = storage(name, arguments.items[0]);
    Layout layout{integer(name, arguments.items[1], "storage offset"), integers(name, arguments.items[2], "size"),
                  integers(name, arguments.items[3], "stride")};
    if (layout.sizes.size() != layout.strides.size())
      fail(fmt::format("tensor '{}' has {} sizes but {} strides", name, layout.sizes.size(), layout.strides.size()));
    Shape shape(layout.sizes);
    DType dtype = s.dtype;
    std::size_t element_size = dtype_size(dtype);

    // Element count, and the furthest element the layout reaches, both without overflow.
    std::int64_t numel = 1, last = layout.offset;
    for (std::size_t d = 0; d < layout.sizes.size(); ++d) {
      std::int64_t reach = 0;
      if (__builtin_mul_overflow(numel, layout.sizes[d], &numel) ||
          (layout.sizes[d] > 0 && (__builtin_mul_overflow(layout.sizes[d] - 1, layout.strides[d], &reach) ||
                                   __builtin_add_overflow(last, reach, &last))))
        fail(fmt::format("tensor '{}' ({}) is too large to address", name, describe(layout)));
    }
    if (numel == 0) return HostTensor(dtype, shape);
    if (last >= s.numel)
      fail(fmt::format("tensor '{}' ({}) reaches element {} of storage '{}', which holds {} elements", name,
                       describe(layout), last, s.key, s.numel));

    const std::byte* storage_bytes = s.data.bytes.data();
    if (is_contiguous(layout)) {
      const std::byte* start = storage_bytes + static_cast<std::size_t>(layout.offset) * element_size;
      if (reinterpret_cast<std::uintptr_t>(start) % element_size == 0)
        return HostTensor::view(dtype, shape, start, s.data.owner);
      // Misaligned in the file: legal in a zip, never written by torch.
      HostTensor copy = new_copy(name, dtype, shape);
      std::memcpy(copy.mutable_data(), start, copy.nbytes());
      return copy;
    }
    // Stride 0 repeats elements: a tensor larger than its storage would be a copy without bound.
    if (numel > s.numel)
      fail(
          fmt::format("tensor '{}' ({}) repeats elements of its storage '{}' ({} elements for {}): expanded tensors "
                      "are not read",
                      name, describe(layout), s.key, numel, s.numel));
    HostTensor copy = new_copy(name, dtype, shape);
    copy_strided(layout, element_size, storage_bytes, copy.mutable_data(), numel);
    return copy;
  }

  // A tensor that cannot be a view is copied. Each copy is at most its storage's size, but any
  // number of tensors may copy one storage: a checkpoint has a few views of a storage at most, so
  // all copies together may not exceed kCopyBudget times the storages' size, and a small file
  // cannot make the reader allocate without bound.
  HostTensor new_copy(const std::string& name, DType dtype, const Shape& shape) {
    copied_ += static_cast<std::uint64_t>(shape.numel()) * dtype_size(dtype);  // each at most a storage
    if (copied_ / kCopyBudget > storages_size_)
      fail(
          fmt::format("tensor '{}' brings the bytes copied out of non-contiguous tensors to {}, more than {} times "
                      "the {} bytes of all storages",
                      name, copied_, kCopyBudget, storages_size_));
    return HostTensor(dtype, shape);
  }
  static constexpr std::uint64_t kCopyBudget = 4;

  std::string origin_;
  ZipArchive zip_;
  std::uint64_t storages_size_ = 0;  // of every entry under <prefix>/data/
  std::uint64_t copied_ = 0;
  std::string prefix_;
  const pickle::Document* document_ = nullptr;
  std::map<std::string, ZipEntryData> storage_bytes_;  // each entry read (and CRC-checked) once
};

}  // namespace

WeightMap read_pth(std::span<const std::byte> bytes, std::shared_ptr<const void> owner, const std::string& path) {
  return PthReader(bytes, std::move(owner), path).read();
}

WeightMap read_pth(const std::string& path) {
  std::shared_ptr<const MappedFile> file = MappedFile::open(path);
  return read_pth(file->bytes(), file, path);
}

bool is_pth_file(const std::string& path) {
  char head[kZipSignature.size()] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(head, sizeof head);
  return std::string_view(head, static_cast<std::size_t>(in.gcount())) == kZipSignature;
}

}  // namespace rwkvc
