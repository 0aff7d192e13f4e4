/* ----------------------------------------------------------------------
   mlff: the libtorch side of pair_style mlff (see mlff_model.h).
------------------------------------------------------------------------- */

#include "mlff_model.h"
#include "mlff_native.h"

// LAMMPS headers before torch headers (see docs/design.md)
#include "json.h"

#include <torch/cuda.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>
#include <torch/version.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

using MLFF::ModelError;

namespace {

// a model the native evaluator does not compute (not a student): torch runs it
class NotAStudent : public ModelError {
 public:
  using ModelError::ModelError;
};

constexpr const char *METADATA_FILE = "mlff.json";
constexpr const char *FORMAT = "mlff-model";
constexpr int VERSION = 1;             // TorchScript
constexpr int COMPILED_VERSION = 2;    // an AOTInductor package (mlff-tools compile)
const char *PACKAGE_METADATA = "extra/mlff.json";

// first line of a torch error: the rest is a C++ backtrace no user needs
std::string first_line(const std::string &text)
{
  auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

// what went wrong inside forward(): TorchScript's own exceptions put the Python-side message
// (e.g. "RuntimeError: ...") on the last line, after the interpreter's traceback
std::string forward_error(const std::string &text)
{
  if (text.find("The following operation failed in the TorchScript interpreter") ==
      std::string::npos)
    return first_line(text);
  std::string last;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (line.find_first_not_of(" \t") != std::string::npos) last = line;
    start = end + 1;
  }
  return last;
}

MLFF::ModelMetadata parse_metadata(const std::string &path, const std::string &text)
{
  using LAMMPS_NS::json;
  const std::string where = "model '" + path + "': " + METADATA_FILE;
  json doc;
  try {
    doc = json::parse(text);
  } catch (std::exception &e) {
    throw ModelError(where + " is not valid JSON (" + first_line(e.what()) +
                     "); re-export the model with mlff-tools");
  }
  if (!doc.is_object()) throw ModelError(where + " must be a JSON object");

  auto require = [&](const char *key) -> const json & {
    if (!doc.contains(key))
      throw ModelError(where + " lacks the key `" + key + "`; re-export the model with mlff-tools");
    return doc.at(key);
  };

  MLFF::ModelMetadata meta;
  const json &format = require("format");
  if (!format.is_string() || format.get<std::string>() != FORMAT)
    throw ModelError(where + ": `format` is " + format.dump() + ", expected \"" + FORMAT +
                     "\"; this file was not written by mlff-tools");

  const json &version = require("version");
  if (!version.is_number_integer())
    throw ModelError(where + ": `version` must be an integer, got " + version.dump());
  meta.version = version.get<int>();
  if (meta.version != VERSION && meta.version != COMPILED_VERSION)
    throw ModelError(where + ": unknown `version` " + std::to_string(meta.version) +
                     "; this pair_style reads versions 1 and 2, update mlff-tools and rebuild "
                     "the plugin");
  if (meta.version == COMPILED_VERSION) {
    const json &target = require("target");
    auto field = [&](const char *key) -> std::string {
      if (!target.is_object() || !target.contains(key) || !target.at(key).is_string())
        throw ModelError(where + ": `target` lacks `" + key + "`; recompile the model with "
                         "`mlff-tools compile`");
      return target.at(key).get<std::string>();
    };
    meta.target_device = field("device");
    meta.target_cpu_isa = field("cpu_isa");
    meta.target_torch = field("torch");
    if (meta.target_device == "cuda") meta.target_gpu_arch = field("gpu_arch");
    if (target.contains("threads") && target.at("threads").is_number_integer())
      meta.target_threads = target.at("threads").get<int>();
  }

  const json &species = require("species");
  if (!species.is_array() || species.empty())
    throw ModelError(where + ": `species` must be a non-empty list of element symbols");
  for (const auto &s : species) {
    if (!s.is_string()) throw ModelError(where + ": `species` entries must be strings");
    meta.species.push_back(s.get<std::string>());
  }

  const json &cutoff = require("cutoff");
  if (!cutoff.is_number() || cutoff.get<double>() <= 0.0)
    throw ModelError(where + ": `cutoff` must be a positive number (Angstrom), got " +
                     cutoff.dump());
  meta.cutoff = cutoff.get<double>();

  const json &units = require("units");
  if (!units.is_string() || units.get<std::string>() != "metal")
    throw ModelError(where + ": `units` must be \"metal\", got " + units.dump());
  meta.units = "metal";

  const json &dtype = require("dtype");
  if (!dtype.is_string() ||
      (dtype.get<std::string>() != "float32" && dtype.get<std::string>() != "float64"))
    throw ModelError(where + ": `dtype` must be \"float32\" or \"float64\", got " + dtype.dump());
  meta.dtype = dtype.get<std::string>();
  return meta;
}

torch::Device pick_device(const MLFF::DeviceRequest &request)
{
  if (request.kind == "cpu") return torch::kCPU;
  const bool have_cuda = torch::cuda::is_available();
  if (request.kind == "auto" && !have_cuda) return torch::kCPU;
  if (!have_cuda)
    throw ModelError("`device cuda` was requested but libtorch sees no CUDA device on this node "
                     "(a CPU-only torch build or no GPU); use `device cpu` or `device auto`");
  const int count = static_cast<int>(torch::cuda::device_count());
  if (request.cuda_index >= count)
    throw ModelError("GPU " + std::to_string(request.cuda_index) + " was requested but libtorch "
                     "sees " + std::to_string(count) + " GPU(s) on this node");
  const int index = request.cuda_index >= 0 ? request.cuda_index : request.node_local_rank % count;
  return {torch::kCUDA, static_cast<c10::DeviceIndex>(index)};
}

}    // namespace

// forward() with its outputs checked against the contract (defined below)
static std::pair<torch::Tensor, torch::Tensor> run_forward(
    torch::jit::Module &module, torch::inductor::AOTIModelPackageLoader *package,
    const torch::Tensor &species, const torch::Tensor &edge_index, const torch::Tensor &edge_vec,
    torch::Dtype dtype);

struct MLFF::Model::Impl {
  torch::jit::Module module;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> package;    // version 2
  ModelMetadata meta;
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat64;
  bool compiled = false;
  torch::Tensor atom_energy, edge_grad;    // host float64 outputs of the last call (host path)
  torch::Tensor type_species;              // [ntypes+1] LAMMPS type -> species, on the device
  torch::Tensor packed;                    // host float64 outputs of the last call (device path)
  torch::Tensor device_energy, device_grad;    // outputs of the last DeviceGraph call
  std::unique_ptr<NativeModel> native;     // evaluator native: the student in C++
  std::string evaluator_note;              // why `evaluator auto` did not take native
  StudentSpec native_spec;                 // and its weights
  std::vector<double> native_energy, native_grad;    // its outputs of the last call
  // MLFF_PROFILE=1: seconds spent in the device path's phases (synchronised per phase)
  bool profile = false;
  double phase_seconds[4] = {0, 0, 0, 0};
  int64_t profiled_calls = 0;
  std::chrono::steady_clock::time_point phase_start;
  void mark(int phase)
  {
    if (!profile) return;
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
    const auto now = std::chrono::steady_clock::now();
    if (phase >= 0) phase_seconds[phase] += std::chrono::duration<double>(now - phase_start).count();
    phase_start = now;
  }
};

MLFF::Model::Model(const std::string &path, const DeviceRequest &request) : impl(new Impl)
{
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe)
      throw ModelError("cannot open model file '" + path +
                       "': no such file or not readable; give the path of a model written by "
                       "mlff-tools (e.g. `mlff-tools export-sw Si.sw -o sw.pt`)");
    // a compiled package (`mlff-tools compile`, contract version 2) names its code files
    // data/aotinductor/... in the zip directory, which holds names in plain text
    const std::string bytes((std::istreambuf_iterator<char>(probe)),
                            std::istreambuf_iterator<char>());
    impl->compiled =
        bytes.compare(0, 2, "PK") == 0 && bytes.find("/data/aotinductor/") != std::string::npos;
  }
  impl->device = pick_device(request);
  if (impl->compiled) {
    // mlff.json first, from the archive alone: a package for another instruction set must
    // be refused before its code is loaded (an illegal instruction is a crash)
    std::string text;
    try {
      caffe2::serialize::PyTorchStreamReader reader(path);
      if (!reader.hasRecord(PACKAGE_METADATA))
        throw ModelError("'" + path + "' is a compiled package without mlff metadata: not "
                         "written by `mlff-tools compile`");
      auto record = reader.getRecord(PACKAGE_METADATA);
      text.assign(static_cast<const char *>(std::get<0>(record).get()), std::get<1>(record));
    } catch (const c10::Error &e) {
      throw ModelError("compiled model '" + path + "' cannot be read (" +
                       first_line(e.what_without_backtrace()) + "); recompile it with "
                       "`mlff-tools compile`");
    }
    impl->meta = parse_metadata(path, text);
    if (impl->meta.version != COMPILED_VERSION)
      throw ModelError("compiled model '" + path + "' says version " +
                       std::to_string(impl->meta.version) + "; recompile it with "
                       "`mlff-tools compile`");
    auto refuse = [&](const std::string &why) {
      throw ModelError("compiled model '" + path + "' cannot run here: " + why +
                       "; recompile it here with `mlff-tools compile` (or run the portable .pt)");
    };
    const std::string torch_here = TORCH_VERSION;
    const std::string torch_there = impl->meta.target_torch.substr(
        0, impl->meta.target_torch.find('+'));
    if (torch_there != torch_here)
      refuse("it was compiled with torch " + impl->meta.target_torch + ", this plugin runs "
             "libtorch " + torch_here);
    const std::string device_here = impl->device.is_cuda() ? "cuda" : "cpu";
    if (impl->meta.target_device != device_here)
      refuse("it was compiled for " + impl->meta.target_device + ", this pair_style runs on " +
             device_here + " (the `device` keyword)");
    if (device_here == "cpu") {
      static const std::vector<std::string> order{"DEFAULT", "AVX2", "AVX512"};
      const std::string have = at::get_cpu_capability();
      const std::string need = impl->meta.target_cpu_isa;
      const auto h = std::find(order.begin(), order.end(), have);
      const auto n = std::find(order.begin(), order.end(), need);
      if (need != have && (h == order.end() || n == order.end() || n > h))
        refuse("it was compiled for " + need + " instructions and this CPU has " + have);
    }
    try {
      impl->package = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
          path, "model", false, 1, impl->device.is_cuda() ? impl->device.index() : -1);
    } catch (const c10::Error &e) {
      throw ModelError("compiled model '" + path + "' cannot be loaded (" +
                       first_line(e.what_without_backtrace()) + "); recompile it with "
                       "`mlff-tools compile`");
    } catch (const std::exception &e) {
      throw ModelError("compiled model '" + path + "' cannot be loaded (" + first_line(e.what()) +
                       "); recompile it with `mlff-tools compile`");
    }
    impl->dtype = impl->meta.dtype == "float32" ? torch::kFloat32 : torch::kFloat64;
  } else {
    torch::jit::ExtraFilesMap extra{{METADATA_FILE, ""}};
    // MLFF_JIT_OPTIMIZE=0: TorchScript's graph executor runs the graph as written, without
    // profiling runs and fused kernels respecialised as the edge count changes; a switch
    // for measuring the GPU (benchmarks/gpu), where fusion is on by default (not on CPUs)
    const char *optimize = std::getenv("MLFF_JIT_OPTIMIZE");
    if (optimize != nullptr && std::string(optimize) == "0")
      torch::jit::setGraphExecutorOptimize(false);
    try {
      impl->module = torch::jit::load(path, impl->device, extra);
    } catch (const c10::Error &e) {
      throw ModelError("cannot load model file '" + path + "': it is not a TorchScript archive (" +
                       first_line(e.what_without_backtrace()) +
                       "); write model files with mlff-tools");
    } catch (const std::exception &e) {
      throw ModelError("cannot load model file '" + path + "': " + first_line(e.what()));
    }
    if (extra[METADATA_FILE].empty())
      throw ModelError("model '" + path + "' has no " + METADATA_FILE +
                       " metadata: it is TorchScript but was not written by mlff-tools; "
                       "save it with mlff_tools.model.save_model()");
    impl->meta = parse_metadata(path, extra[METADATA_FILE]);
    if (impl->meta.version != VERSION)
      throw ModelError("model '" + path + "' says version " + std::to_string(impl->meta.version) +
                       " (a compiled package) but is TorchScript (version 1); re-export it with "
                       "mlff-tools");
    impl->dtype = impl->meta.dtype == "float32" ? torch::kFloat32 : torch::kFloat64;
    impl->module.eval();
  }
  smoke_test(path);
  if (request.evaluator == "native") {
    if (impl->compiled)
      throw ModelError("`evaluator native` reads the student's weights from its TorchScript "
                       "file (.pt); '" + path + "' is a compiled package: give the .pt it was "
                       "compiled from");
    load_native(path);
  } else if (request.evaluator == "auto" && !impl->compiled && !impl->device.is_cuda()) {
    // a student's .pt on the CPU: its own C++ (2.2x the TorchScript file on one core)
    try {
      load_native(path);
    } catch (NotAStudent &) {
      // the SW reference model or another contract module: libtorch runs it
    } catch (ModelError &e) {
      impl->evaluator_note = std::string(e.what()) + "; it runs with libtorch instead";
    }
  }
  impl->profile = profile_requested();
}

/* ----------------------------------------------------------------------
   evaluator native: the student's weights from its TorchScript module, and a
   check that the C++ student computes what the module computes
------------------------------------------------------------------------- */

void MLFF::Model::load_native(const std::string &path)
{
  std::map<std::string, torch::Tensor> tensors;
  for (const auto &item : impl->module.named_parameters(true)) tensors[item.name] = item.value;
  for (const auto &item : impl->module.named_buffers(true)) tensors[item.name] = item.value;
  const std::string refuse = "`evaluator native` computes mlff students (mlff-tools train, "
                             "distill); model '" + path + "' is not one (";
  auto values = [&](const std::string &name) {
    auto found = tensors.find("energy." + name);
    if (found == tensors.end())
      throw NotAStudent(refuse + "it has no `" + name + "`); use `evaluator torch`");
    auto t = found->second.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  };
  auto shape = [&](const std::string &name) { return tensors.at("energy." + name).sizes().vec(); };

  StudentSpec spec;
  spec.n_species = static_cast<int>(impl->meta.species.size());
  spec.cutoff = impl->meta.cutoff;
  spec.frequencies = values("frequencies");
  spec.n_radial = static_cast<int>(spec.frequencies.size());
  const int pairs = static_cast<int>(values("triu").size());
  spec.n_channels = static_cast<int>(std::lround((std::sqrt(8.0 * pairs + 1.0) - 1.0) / 2.0));
  const auto radial = values("radial_weight");
  const auto radial_shape = shape("radial_weight");
  const int S = spec.n_species, NR = spec.n_radial, K = spec.n_channels;
  const int64_t width = radial_shape.size() == 2 ? radial_shape[1] : 0;
  spec.l_max = K > 0 ? static_cast<int>(width / K) - 1 : 0;
  // each species pair's weights [pair][n][width]: its own block, or its mix of shared banks
  const int npairs = S * S;
  spec.pair_weights.assign(std::size_t(npairs) * NR * width, 0.0);
  if (tensors.count("energy.pair_embedding")) {
    const auto mix = values("pair_embedding");
    const int banks = static_cast<int>(shape("pair_embedding").back());
    if (mix.size() != std::size_t(npairs) * banks || radial.size() != std::size_t(NR) * banks * width)
      throw NotAStudent(refuse + "its radial banks do not match its species); use "
                        "`evaluator torch`");
    for (int p = 0; p < npairs; ++p)
      for (int n = 0; n < NR; ++n)
        for (int m = 0; m < banks; ++m)
          for (int64_t c = 0; c < width; ++c)
            spec.pair_weights[(std::size_t(p) * NR + n) * width + c] +=
                mix[p * banks + m] * radial[(std::size_t(n) * banks + m) * width + c];
  } else {
    if (radial.size() != std::size_t(NR) * npairs * width)
      throw NotAStudent(refuse + "its radial weights do not match its species); use "
                        "`evaluator torch`");
    for (int p = 0; p < npairs; ++p)
      for (int n = 0; n < NR; ++n)
        for (int64_t c = 0; c < width; ++c)
          spec.pair_weights[(std::size_t(p) * NR + n) * width + c] =
              radial[(std::size_t(n) * npairs + p) * width + c];
  }
  if (spec.l_max >= 3) spec.rank3 = values("rank3");
  spec.reference_energy = values("reference_energy");
  spec.energy_scale = values("energy_scale").at(0);
  spec.inv_avg_neighbours = values("inv_avg_neighbours").at(0);
  spec.feature_mean = values("feature_mean");
  spec.feature_inv_std = values("feature_inv_std");
  for (int layer = 0; tensors.count("energy.readout." + std::to_string(layer) + ".weight") ||
                      tensors.count("energy.readout." + std::to_string(layer + 1) + ".weight");
       ++layer) {
    const std::string name = "readout." + std::to_string(layer);
    if (!tensors.count("energy." + name + ".weight")) continue;    // an activation
    const auto weight_shape = shape(name + ".weight");
    spec.layer_weight.push_back(values(name + ".weight"));
    spec.layer_bias.push_back(values(name + ".bias"));
    spec.layer_out.push_back(static_cast<int>(weight_shape.at(0)));
    spec.layer_in.push_back(static_cast<int>(weight_shape.at(1)));
  }
  const std::string wrong = check_student_spec(spec);
  if (!wrong.empty())
    throw NotAStudent(refuse + wrong + "); use `evaluator torch`");
  impl->native.reset(make_native_model(spec, impl->meta.dtype));
  impl->native_spec = spec;

  // the C++ student against the module on a small cluster of every species: the same
  // energies and gradients (float64 to 1e-10, float32 to 1e-4, relative to the largest)
  const int natoms = 7;
  std::vector<int64_t> species(natoms), centre, neighbour;
  std::vector<double> vec, position(3 * natoms);
  const double rc = impl->meta.cutoff;
  for (int i = 0; i < natoms; ++i) {
    species[i] = i % S;
    for (int k = 0; k < 3; ++k)
      position[3 * i + k] = 0.23 * rc * std::sin(1.7 * (i + 1) * (k + 1) + 0.4 * k);
  }
  for (int i = 0; i < natoms - 1; ++i)    // the last atom a ghost: energy but no edges
    for (int j = 0; j < natoms; ++j) {
      if (i == j) continue;
      double d[3], r2 = 0.0;
      for (int k = 0; k < 3; ++k) {
        d[k] = position[3 * j + k] - position[3 * i + k];
        r2 += d[k] * d[k];
      }
      if (r2 >= rc * rc || r2 < 1e-4) continue;
      centre.push_back(i);
      neighbour.push_back(j);
      vec.insert(vec.end(), d, d + 3);
    }
  const int64_t nedges = static_cast<int64_t>(centre.size());
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto edge_index = torch::stack({torch::tensor(centre, i64), torch::tensor(neighbour, i64)});
  auto reference = run_forward(impl->module, nullptr, torch::tensor(species, i64).to(impl->device),
                               edge_index.to(impl->device),
                               torch::tensor(vec, f64).view({nedges, 3}).to(impl->device, impl->dtype),
                               impl->dtype);
  reference.first = reference.first.cpu();
  reference.second = reference.second.cpu();
  const double scale_e = std::max(1.0, reference.first.abs().max().item<double>());
  const double scale_g = std::max(1.0, reference.second.abs().max().item<double>());
  // as built (each centre's edges together), then in reverse order (gathered by centre first)
  double off_e = 0.0, off_g = 0.0;
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<int64_t> order(nedges), c(nedges), n(nedges);
    std::vector<double> v(3 * nedges), energy(natoms), grad(3 * nedges);
    for (int64_t e = 0; e < nedges; ++e) {
      order[e] = pass == 0 ? e : nedges - 1 - e;
      c[e] = centre[order[e]];
      n[e] = neighbour[order[e]];
      for (int k = 0; k < 3; ++k) v[3 * e + k] = vec[3 * order[e] + k];
    }
    impl->native->compute(natoms, species.data(), nedges, c.data(), n.data(), v.data(),
                          energy.data(), grad.data());
    auto mine_e = torch::tensor(energy, f64);
    auto mine_g = torch::tensor(grad, f64).view({nedges, 3});
    auto expected_g = reference.second.index_select(0, torch::tensor(order, i64));
    off_e = std::max(off_e, (mine_e - reference.first).abs().max().item<double>() / scale_e);
    off_g = std::max(off_g, (mine_g - expected_g).abs().max().item<double>() / scale_g);
  }
  const double tolerance = impl->dtype == torch::kFloat32 ? 1e-4 : 1e-10;
  if (!(off_e <= tolerance && off_g <= tolerance)) {
    char detail[160];
    std::snprintf(detail, sizeof(detail), "energies %.2g and gradients %.2g apart, relative, "
                  "against %.0e", off_e, off_g, tolerance);
    impl->native.reset();
    throw ModelError("the native evaluator does not compute what model '" + path + "' computes (" +
                     detail + "): please report this with the model; `evaluator torch` runs it");
  }
}

std::string MLFF::Model::evaluator() const
{
  return impl->native ? "native" : "torch";
}

std::string MLFF::Model::evaluator_note() const
{
  return impl->evaluator_note;
}

const MLFF::StudentSpec *MLFF::Model::native_spec() const
{
  return impl->native ? &impl->native_spec : nullptr;
}

bool MLFF::Model::profile_requested()
{
  const char *profile = std::getenv("MLFF_PROFILE");
  return profile != nullptr && std::string(profile) != "" && std::string(profile) != "0";
}

MLFF::Model::~Model() = default;

/* ----------------------------------------------------------------------
   the contract check of mlff-tools' save_model, at load time: a pair of
   atoms at half the cutoff and an isolated atom must give finite outputs
   of the right shapes and dtype, so a broken file fails at pair_style
------------------------------------------------------------------------- */

void MLFF::Model::smoke_test(const std::string &path)
{
  const auto dev = impl->device;
  auto species = torch::zeros({3}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  auto edge_index = torch::tensor({0, 1, 1, 0}, torch::TensorOptions().dtype(torch::kInt64))
                        .view({2, 2})
                        .to(dev);
  const double half = 0.5 * impl->meta.cutoff;
  auto edge_vec = torch::tensor({0.0, 0.0, half, 0.0, 0.0, -half},
                                torch::TensorOptions().dtype(torch::kFloat64))
                      .view({2, 3})
                      .to(dev, impl->dtype);
  const std::string where = "model '" + path + "' fails the contract check (two atoms at half "
                            "the cutoff and an isolated atom): ";
  std::pair<torch::Tensor, torch::Tensor> outputs;
  try {
    outputs = run_forward(impl->module, impl->package.get(), species, edge_index, edge_vec,
                          impl->dtype);
  } catch (ModelError &e) {
    throw ModelError(where + e.what() + "; re-export it with mlff-tools");
  }
  if (!outputs.first.isfinite().all().item<bool>() || !outputs.second.isfinite().all().item<bool>())
    throw ModelError(where + "it returns non-finite energies or gradients; re-export it with "
                     "mlff-tools or check its weights");
}

const MLFF::ModelMetadata &MLFF::Model::metadata() const
{
  return impl->meta;
}

std::string MLFF::Model::device_name() const
{
  return impl->device.str();
}

void MLFF::Model::set_num_threads(int nthreads)
{
  at::set_num_threads(nthreads);
}

/* ----------------------------------------------------------------------
   glibc's malloc returns large freed blocks to the kernel (blocks above
   the mmap threshold, and the heap's top beyond the trim threshold), so
   each step's tensors of the same sizes come back as new pages that the
   kernel faults in and zeroes. Its own dynamic threshold avoids that only
   for some orders of allocation: measured at 4096 atoms on one core, a
   compiled student ran 1.3e5 atom-steps/s in some runs and 1.1e5 in
   others, and TorchScript 5-10% below the runs with the thresholds set.
   Set, the heap keeps freed memory for the next step (the per-step
   working set, which the next step needs again).
------------------------------------------------------------------------- */

std::string MLFF::Model::keep_freed_memory()
{
#ifdef __GLIBC__
  static bool done = false;
  if (done) return "";
  done = true;
  const char *choice = std::getenv("MLFF_MALLOC");
  if (choice != nullptr && std::string(choice) == "system") return "";
  const char *tunables = std::getenv("GLIBC_TUNABLES");
  if ((tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) ||
      std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr ||
      std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr)
    return "";    // the user's own malloc settings
  constexpr int mmap_threshold = 32 << 20;    // glibc's largest on 64-bit systems
  constexpr int trim_threshold = 1 << 30;
  if (mallopt(M_MMAP_THRESHOLD, mmap_threshold) != 1 ||
      mallopt(M_TRIM_THRESHOLD, trim_threshold) != 1)
    return "";
  return "mlff: malloc keeps freed memory for the next step (glibc mmap threshold 32 MiB, "
         "trim threshold 1 GiB; MLFF_MALLOC=system leaves malloc as it is)";
#else
  return "";
#endif
}

// forward() on the model's device (the compiled package's run() for version 2); both
// outputs float64 on that device, shapes checked
static std::pair<torch::Tensor, torch::Tensor> run_forward(
    torch::jit::Module &module, torch::inductor::AOTIModelPackageLoader *package,
    const torch::Tensor &species, const torch::Tensor &edge_index, const torch::Tensor &edge_vec,
    torch::Dtype dtype)
{
  const int64_t natoms = species.size(0);
  const int64_t nedges = edge_index.size(1);
  c10::IValue output;
  torch::AutoGradMode grad_mode(true);    // forward() differentiates its energy itself
  try {
    if (package != nullptr) {     // compiled: the gradient is part of its code
      torch::NoGradGuard no_grad;
      auto outputs = package->run({species, edge_index, edge_vec.detach()});
      std::vector<c10::IValue> items(outputs.begin(), outputs.end());
      output = c10::ivalue::Tuple::create(std::move(items));
    } else {
      output = module.forward({species, edge_index, edge_vec});
    }
  } catch (const c10::Error &e) {
    throw ModelError("the model failed to evaluate " + std::to_string(natoms) + " atoms and " +
                     std::to_string(nedges) + " edges: " +
                     forward_error(e.what_without_backtrace()));
  } catch (const std::exception &e) {
    throw ModelError("the model failed to evaluate " + std::to_string(natoms) + " atoms and " +
                     std::to_string(nedges) + " edges: " + forward_error(e.what()));
  }

  if (!output.isTuple() || output.toTupleRef().elements().size() != 2)
    throw ModelError("the model's forward() must return (atom_energy, edge_grad)");
  const auto &elements = output.toTupleRef().elements();
  if (!elements[0].isTensor() || !elements[1].isTensor())
    throw ModelError("the model's forward() must return two tensors (atom_energy, edge_grad)");
  auto atom_energy = elements[0].toTensor().detach();
  auto edge_grad = elements[1].toTensor().detach();
  for (const auto &output : {atom_energy, edge_grad}) {
    const auto type = output.scalar_type();
    if (type != torch::kFloat32 && type != torch::kFloat64)
      throw ModelError(std::string("the model returned atom_energy of dtype ") +
                       c10::toString(atom_energy.scalar_type()) + " and edge_grad of dtype " +
                       c10::toString(edge_grad.scalar_type()) +
                       "; the contract asks for float32 or float64");
    if (type != dtype)
      throw ModelError(std::string("the model returned ") + c10::toString(type) +
                       " outputs but its metadata says `dtype` " + c10::toString(dtype));
  }
  if (atom_energy.numel() != natoms || edge_grad.numel() != 3 * nedges)
    throw ModelError("the model returned atom_energy of " + std::to_string(atom_energy.numel()) +
                     " values and edge_grad of " + std::to_string(edge_grad.numel()) +
                     " values for " + std::to_string(natoms) + " atoms and " +
                     std::to_string(nedges) + " edges");
  return {atom_energy.to(torch::kFloat64).reshape({natoms}).contiguous(),
          edge_grad.to(torch::kFloat64).reshape({nedges, 3}).contiguous()};
}

MLFF::Result MLFF::Model::compute(const Graph &graph)
{
  const int64_t natoms = static_cast<int64_t>(graph.species.size());
  const int64_t nedges = graph.nedges;
  if (impl->native) {
    impl->native_energy.resize(natoms);
    impl->native_grad.resize(3 * nedges);
    impl->native->compute(natoms, graph.species.data(), nedges, graph.centre.data(),
                          graph.neighbour.data(), graph.edge_vec.data(),
                          impl->native_energy.data(), impl->native_grad.data());
    return checked_result(impl->native_energy.data(), impl->native_grad.data(), natoms, nedges);
  }
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

  // from_blob wraps the host vectors without copying; the model never writes its inputs
  torch::Tensor species, edge_index, edge_vec;
  if (natoms > 0)
    species = torch::from_blob(const_cast<int64_t *>(graph.species.data()), {natoms}, i64);
  else
    species = torch::empty({0}, i64);
  if (nedges > 0) {
    auto centre = torch::from_blob(const_cast<int64_t *>(graph.centre.data()), {nedges}, i64);
    auto neighbour =
        torch::from_blob(const_cast<int64_t *>(graph.neighbour.data()), {nedges}, i64);
    edge_index = torch::stack({centre, neighbour});
    edge_vec = torch::from_blob(const_cast<double *>(graph.edge_vec.data()), {nedges, 3}, f64);
  } else {
    edge_index = torch::empty({2, 0}, i64);
    edge_vec = torch::empty({0, 3}, f64);
  }
  species = species.to(impl->device);
  edge_index = edge_index.to(impl->device);
  edge_vec = edge_vec.to(impl->device, impl->dtype);

  auto outputs = run_forward(impl->module, impl->package.get(), species, edge_index, edge_vec,
                             impl->dtype);
  impl->atom_energy = outputs.first.cpu();
  impl->edge_grad = outputs.second.cpu();

  return checked_result(impl->atom_energy.data_ptr<double>(), impl->edge_grad.data_ptr<double>(),
                        natoms, nedges);
}

// the outputs with the first non-finite energy and gradient found in them
MLFF::Result MLFF::Model::checked_result(const double *atom_energy, const double *edge_grad,
                                         int64_t natoms, int64_t nedges)
{
  Result result;
  result.atom_energy = atom_energy;
  result.edge_grad = edge_grad;
  for (int64_t i = 0; i < natoms; ++i)
    if (!std::isfinite(result.atom_energy[i])) {
      result.first_bad_atom = i;
      break;
    }
  for (int64_t e = 0; e < 3 * nedges; ++e)
    if (!std::isfinite(result.edge_grad[e])) {
      result.first_bad_edge = e / 3;
      break;
    }
  return result;
}

void MLFF::Model::set_type_species(const std::vector<int> &type_to_species)
{
  std::vector<int64_t> map(type_to_species.begin(), type_to_species.end());
  try {
    impl->type_species =
        torch::tensor(map, torch::TensorOptions().dtype(torch::kInt64)).to(impl->device);
  } catch (const std::exception &e) {
    throw ModelError("cannot place the type map on " + impl->device.str() + ": " +
                     first_line(e.what()));
  }
}

/* ----------------------------------------------------------------------
   the device path: upload positions, types and the neighbour list; build
   the edges below the cutoff, run the model and scatter forces, energies
   and virials with tensor kernels on the model's device; bring back one
   packed float64 buffer. The same code runs on CPU tensors.
------------------------------------------------------------------------- */

MLFF::NeighbourOutput MLFF::Model::compute(const NeighbourInput &in)
{
  if (impl->native)
    throw ModelError("`evaluator native` computes graphs built on the host (`graph host`)");
  if (!impl->type_species.defined())
    throw ModelError("internal: set_type_species() was not called before compute()");
  const auto dev = impl->device;
  const auto i32 = torch::TensorOptions().dtype(torch::kInt32);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const int64_t nall = in.nall;
  const int64_t ncentre = in.ncentre;
  const int64_t nneigh = ncentre > 0 ? in.offset[ncentre] : 0;
  auto upload = [&](const void *data, int64_t n, torch::TensorOptions opt) {
    if (n == 0) return torch::empty({0}, opt.device(dev));
    return torch::from_blob(const_cast<void *>(data), {n}, opt).to(dev, /*non_blocking=*/false);
  };
  impl->mark(-1);

  auto x = upload(in.x, 3 * nall, f64).view({nall, 3});
  auto species = impl->type_species.index_select(0, upload(in.type, nall, i32).to(torch::kInt64));
  auto centre = upload(in.centre, ncentre, i32).to(torch::kInt64);
  auto offset = upload(in.offset, ncentre + 1, i32).to(torch::kInt64);
  auto neighbour = upload(in.neighbour, nneigh, i32).to(torch::kInt64);
  impl->mark(0);

  // candidate pairs (centre, neighbour) -> edges shorter than the cutoff between mapped types;
  // a NaN distance is kept (not >= cutoff) so the model's non-finite output reports it
  auto pair_centre =
      torch::repeat_interleave(centre, offset.slice(0, 1) - offset.slice(0, 0, ncentre),
                               /*dim=*/0, /*output_size=*/nneigh);
  auto pair_vec = x.index_select(0, neighbour) - x.index_select(0, pair_centre);
  auto pair_rsq = (pair_vec * pair_vec).sum(1);
  auto keep = (pair_rsq >= impl->meta.cutoff * impl->meta.cutoff).logical_not_()
                  .logical_and_(species.index_select(0, neighbour) >= 0);
  auto kept = keep.nonzero().view({-1});
  auto edge_i = pair_centre.index_select(0, kept);
  auto edge_j = neighbour.index_select(0, kept);
  auto edge_vec = pair_vec.index_select(0, kept);
  auto edge_rsq = pair_rsq.index_select(0, kept);
  const int64_t nedges = edge_i.size(0);
  impl->mark(1);

  auto outputs = run_forward(impl->module, impl->package.get(), species.clamp_min(0),
                             torch::stack({edge_i, edge_j}),
                             edge_vec.to(impl->dtype), impl->dtype);
  impl->mark(2);
  auto centre_energy = outputs.first.index_select(0, centre);
  const auto &g = outputs.second;

  // contract: F_i += g, F_j -= g, W -= edge_vec (outer) g
  auto force = torch::zeros({nall, 3}, f64.device(dev));
  force.index_add_(0, edge_i, g).index_add_(0, edge_j, -g);
  std::vector<torch::Tensor> packed{force.view({-1}), centre_energy, centre_energy.sum().view({1})};
  torch::Tensor w;
  if (in.virial || in.atom_virial) {
    auto gx = g.select(1, 0), gy = g.select(1, 1), gz = g.select(1, 2);
    auto rx = edge_vec.select(1, 0), ry = edge_vec.select(1, 1), rz = edge_vec.select(1, 2);
    w = -torch::stack({rx * gx, ry * gy, rz * gz, rx * gy, rx * gz, ry * gz}, 1);
  }
  packed.push_back(in.virial ? w.sum(0) : torch::zeros({6}, f64.device(dev)));
  if (in.atom_virial) {
    auto half = 0.5 * w;
    auto atom_virial = torch::zeros({nall, 6}, f64.device(dev));
    atom_virial.index_add_(0, edge_i, half).index_add_(0, edge_j, half);
    packed.push_back(atom_virial.view({-1}));
  }
  // problem flags, judged on the host after the one transfer: overlap, energy, gradient
  auto min_rsq = nedges > 0 ? edge_rsq.min().view({1}) : torch::full({1}, 1.0, f64.device(dev));
  packed.push_back((min_rsq < OVERLAP_DISTANCE * OVERLAP_DISTANCE).to(torch::kFloat64));
  packed.push_back(outputs.first.isfinite().all().logical_not().to(torch::kFloat64).view({1}));
  packed.push_back(g.isfinite().all().logical_not().to(torch::kFloat64).view({1}));
  impl->packed = torch::cat(packed).cpu();
  impl->mark(3);
  impl->profiled_calls += impl->profile ? 1 : 0;

  NeighbourOutput out;
  const double *p = impl->packed.data_ptr<double>();
  out.nedges = nedges;
  out.force = p;
  out.centre_energy = p + 3 * nall;
  out.energy = p[3 * nall + ncentre];
  const double *v = p + 3 * nall + ncentre + 1;
  for (int k = 0; k < 6; ++k) out.virial[k] = v[k];
  const double *flags = v + 6;
  if (in.atom_virial) {
    out.atom_virial = v + 6;
    flags += 6 * nall;
  }

  // on failure only: find the first offender (extra transfers are fine here)
  auto host_index = [](const torch::Tensor &mask) {
    auto where = mask.nonzero();
    return where.numel() ? where[0][0].item<int64_t>() : int64_t(-1);
  };
  if (flags[0] != 0.0) {
    const int64_t e = host_index(edge_rsq < OVERLAP_DISTANCE * OVERLAP_DISTANCE);
    out.overlap_i = static_cast<int>(edge_i[e].item<int64_t>());
    out.overlap_j = static_cast<int>(edge_j[e].item<int64_t>());
    out.overlap_distance = std::sqrt(edge_rsq[e].item<double>());
  } else if (flags[1] != 0.0) {
    out.bad_atom = static_cast<int>(host_index(outputs.first.isfinite().logical_not()));
  } else if (flags[2] != 0.0) {
    const int64_t e = host_index(g.isfinite().logical_not().any(1));
    out.bad_edge_i = static_cast<int>(edge_i[e].item<int64_t>());
    out.bad_edge_j = static_cast<int>(edge_j[e].item<int64_t>());
    out.bad_edge_distance = std::sqrt(edge_rsq[e].item<double>());
  }
  return out;
}

/* ----------------------------------------------------------------------
   forward() on a graph that already lies in the model device's memory
------------------------------------------------------------------------- */

MLFF::DeviceResult MLFF::Model::compute(const DeviceGraph &graph)
{
  if (impl->native)
    throw ModelError("`evaluator native` is not in pair_style mlff/kk yet; use the default "
                     "evaluator there");
  const auto dev = impl->device;
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(dev);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(dev);
  const int64_t natoms = graph.natoms, nedges = graph.nedges;
  auto wrap = [](const void *data, at::IntArrayRef shape, torch::TensorOptions options) {
    if (data == nullptr) return torch::empty(shape, options);
    return torch::from_blob(const_cast<void *>(data), shape, options);
  };
  auto species = wrap(graph.species, {natoms}, i64);
  auto edge_index = wrap(graph.edge_index, {2, nedges}, i64);
  auto edge_vec = wrap(graph.edge_vec, {nedges, 3}, f64);

  auto outputs = run_forward(impl->module, impl->package.get(), species, edge_index,
                             edge_vec.to(impl->dtype),
                             impl->dtype);
  impl->device_energy = outputs.first;
  impl->device_grad = outputs.second;
  // the caller's kernels read the outputs next, possibly on another stream
  if (dev.is_cuda()) torch::cuda::synchronize(dev.index());

  DeviceResult result;
  result.atom_energy = natoms ? impl->device_energy.data_ptr<double>() : nullptr;
  result.edge_grad = nedges ? impl->device_grad.data_ptr<double>() : nullptr;
  return result;
}

std::string MLFF::Model::profile_report() const
{
  if (!impl->profile || impl->profiled_calls == 0) return "";
  const double n = static_cast<double>(impl->profiled_calls);
  const double *t = impl->phase_seconds;
  char text[400];
  snprintf(text, sizeof(text),
           "mlff profile (graph device, %s, %lld calls), ms per call: upload %.3f, graph %.3f, "
           "model %.3f, scatter and download %.3f\n",
           impl->device.str().c_str(), static_cast<long long>(impl->profiled_calls),
           1e3 * t[0] / n, 1e3 * t[1] / n, 1e3 * t[2] / n, 1e3 * t[3] / n);
  return text;
}
