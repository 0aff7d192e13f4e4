/* ----------------------------------------------------------------------
   mlff: the libtorch side of pair_style mlff (see mlff_model.h).
------------------------------------------------------------------------- */

#include "mlff_model.h"

// LAMMPS headers before torch headers (see DESIGN.md)
#include "json.h"

#include <torch/cuda.h>
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <fstream>
#include <sstream>

using MLFF::ModelError;

namespace {

constexpr const char *METADATA_FILE = "mlff.json";
constexpr const char *FORMAT = "mlff-model";
constexpr int VERSION = 1;

// first line of a torch error: the rest is a C++ backtrace no user needs
std::string first_line(const std::string &text)
{
  auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
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
  if (meta.version != VERSION)
    throw ModelError(where + ": unknown `version` " + std::to_string(meta.version) +
                     "; this pair_style reads version " + std::to_string(VERSION) +
                     ", update mlff-tools and rebuild the plugin");

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
  return {torch::kCUDA, static_cast<c10::DeviceIndex>(request.node_local_rank % count)};
}

}    // namespace

struct MLFF::Model::Impl {
  torch::jit::Module module;
  ModelMetadata meta;
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat64;
  torch::Tensor atom_energy, edge_grad;    // host float64 outputs of the last call
};

MLFF::Model::Model(const std::string &path, const DeviceRequest &request) : impl(new Impl)
{
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe)
      throw ModelError("cannot open model file '" + path +
                       "': no such file or not readable; give the path of a model written by "
                       "mlff-tools (e.g. `mlff-tools export-sw Si.sw -o sw.pt`)");
  }
  impl->device = pick_device(request);

  torch::jit::ExtraFilesMap extra{{METADATA_FILE, ""}};
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
  impl->dtype = impl->meta.dtype == "float32" ? torch::kFloat32 : torch::kFloat64;
  impl->module.eval();
}

MLFF::Model::~Model() = default;

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

MLFF::Result MLFF::Model::compute(const Graph &graph)
{
  const int64_t natoms = static_cast<int64_t>(graph.species.size());
  const int64_t nedges = static_cast<int64_t>(graph.centre.size());
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

  c10::IValue output;
  try {
    output = impl->module.forward({species, edge_index, edge_vec});
  } catch (const c10::Error &e) {
    throw ModelError("the model failed to evaluate " + std::to_string(natoms) + " atoms and " +
                     std::to_string(nedges) + " edges: " + first_line(e.what_without_backtrace()));
  } catch (const std::exception &e) {
    throw ModelError(std::string("the model failed to evaluate: ") + first_line(e.what()));
  }

  auto elements = output.toTuple()->elements();
  if (elements.size() != 2)
    throw ModelError("the model's forward() must return (atom_energy, edge_grad)");
  auto cpu_f64 = torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCPU);
  impl->atom_energy = elements[0].toTensor().detach().to(cpu_f64).contiguous();
  impl->edge_grad = elements[1].toTensor().detach().to(cpu_f64).contiguous();
  if (impl->atom_energy.numel() != natoms || impl->edge_grad.numel() != 3 * nedges)
    throw ModelError("the model returned atom_energy of " +
                     std::to_string(impl->atom_energy.numel()) + " values and edge_grad of " +
                     std::to_string(impl->edge_grad.numel()) + " values for " +
                     std::to_string(natoms) + " atoms and " + std::to_string(nedges) + " edges");

  Result result;
  result.atom_energy = impl->atom_energy.data_ptr<double>();
  result.edge_grad = impl->edge_grad.data_ptr<double>();
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
