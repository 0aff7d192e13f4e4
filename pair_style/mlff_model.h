/* -*- c++ -*- ----------------------------------------------------------
   mlff: the model wrapper behind pair_style mlff.

   This header deliberately includes no torch header (PIMPL): only
   mlff_model.cpp sees libtorch, so pair_mlff.cpp compiles against the
   LAMMPS headers alone. Every failure is reported by throwing
   MLFF::ModelError with a complete, user-facing message; the pair style
   catches it at the boundary and re-raises it through LAMMPS's Error class.
------------------------------------------------------------------------- */

#ifndef LMP_MLFF_MODEL_H
#define LMP_MLFF_MODEL_H

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace MLFF {

struct StudentSpec;    // mlff_native.h

class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The validated contents of `mlff.json` (format `mlff-model`, version 1).
struct ModelMetadata {
  std::vector<std::string> species;
  double cutoff = 0.0;
  std::string units;
  std::string dtype;
  int version = 0;
  // version 2 (a compiled package): what it was compiled for
  std::string target_device, target_cpu_isa, target_torch, target_gpu_arch;
  int target_threads = 0;    // CPU threads per process its code was written for; 0: unsaid
};

// Where the model runs: "cpu", "cuda" or "auto" (cuda when available).
struct DeviceRequest {
  std::string kind = "cpu";
  int node_local_rank = 0;    // picks the GPU when several ranks share a node
  int cuda_index = -1;        // this GPU instead (Kokkos's), when >= 0
  // what computes the model: "torch" (its TorchScript or compiled code), "native" (a
  // student's own math in C++, mlff_native.h) or "auto" (native for a student's .pt on the
  // CPU, else torch)
  std::string evaluator = "auto";
};

// A graph in host memory, as the contract's forward() takes it.
// The edges are the first nedges entries of buffers that only grow (written through
// pointers, with no capacity check per edge and no zero-filling of reused memory).
struct Graph {
  std::vector<int64_t> species;      // [N]
  std::vector<int64_t> centre;       // [E], row 0 of edge_index
  std::vector<int64_t> neighbour;    // [E], row 1 of edge_index
  std::vector<double> edge_vec;      // [E*3], r_j - r_i in Angstrom
  int64_t nedges = 0;
  // room for at least `edges` edges
  void reserve_edges(std::size_t edges)
  {
    if (centre.size() >= edges) return;
    edges += edges / 8;    // headroom: the count drifts from step to step
    centre.resize(edges);
    neighbour.resize(edges);
    edge_vec.resize(3 * edges);
  }
};

// Outputs in host memory, float64, valid until the next call to compute().
struct Result {
  const double *atom_energy = nullptr;    // [N], eV
  const double *edge_grad = nullptr;      // [E*3], eV/Angstrom
  int64_t first_bad_atom = -1;            // first atom with a non-finite energy, or -1
  int64_t first_bad_edge = -1;            // first edge with a non-finite gradient, or -1
};

// LAMMPS's atoms and full neighbour list in host memory, for the path that builds the graph
// with tensor kernels on the model's device (`graph device`): only positions, types and the
// compact neighbour list go to the device; forces, energies and virials come back.
struct NeighbourInput {
  const double *x = nullptr;             // [nall*3] positions, Angstrom
  const int *type = nullptr;             // [nall] LAMMPS atom types
  int nall = 0;
  const int *centre = nullptr;           // [ncentre] owned atoms of a mapped type
  const int *offset = nullptr;           // [ncentre+1] where each centre's neighbours start
  const int *neighbour = nullptr;        // [offset[ncentre]] atom indices, NEIGHMASK cleared
  int ncentre = 0;
  bool virial = false;                   // global virial wanted
  bool atom_virial = false;              // per-atom virial wanted
};

// Results of the device path in host memory, float64, valid until the next call.
struct NeighbourOutput {
  const double *force = nullptr;         // [nall*3] eV/Angstrom, ghosts included
  const double *centre_energy = nullptr; // [ncentre] eV, energy of each centre
  const double *atom_virial = nullptr;   // [nall*6] eV, or nullptr when not asked for
  double energy = 0.0;                   // eV, sum of centre_energy
  double virial[6] = {0, 0, 0, 0, 0, 0}; // eV: xx yy zz xy xz yz
  int64_t nedges = 0;
  // the first problem found, if any (atom indices as in NeighbourInput)
  int overlap_i = -1, overlap_j = -1;    // two atoms closer than the overlap distance
  double overlap_distance = 0.0;
  int bad_atom = -1;                     // an atom with a non-finite energy
  int bad_edge_i = -1, bad_edge_j = -1;  // an edge with a non-finite gradient
  double bad_edge_distance = 0.0;
};

// A graph already in the model device's memory (Kokkos views of pair_style mlff/kk), wrapped
// without a copy. Memory on the host for the host backends, on the GPU for CUDA.
struct DeviceGraph {
  const int64_t *species = nullptr;      // [natoms]
  int64_t natoms = 0;
  const int64_t *edge_index = nullptr;   // [2*nedges]: all centres, then all neighbours
  const double *edge_vec = nullptr;      // [nedges*3] r_j - r_i, Angstrom
  int64_t nedges = 0;
};

// forward()'s outputs on the model's device, float64, valid until the next call
struct DeviceResult {
  const double *atom_energy = nullptr;   // [natoms] eV
  const double *edge_grad = nullptr;     // [nedges*3] eV/Angstrom
};

// closer than this (Angstrom) two atoms are one on top of the other
constexpr double OVERLAP_DISTANCE = 1.0e-4;

class Model {
 public:
  Model(const std::string &path, const DeviceRequest &device);
  ~Model();
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;

  const ModelMetadata &metadata() const;
  std::string device_name() const;
  // "torch" or "native": what computes the model (DeviceRequest::evaluator)
  std::string evaluator() const;
  // why `evaluator auto` runs torch on a student (its native check failed), else ""
  std::string evaluator_note() const;
  // evaluator native: the student's weights (for device copies, mlff/kk), else nullptr
  const StudentSpec *native_spec() const;
  Result compute(const Graph &graph);

  // LAMMPS type (1..ntypes) -> model species, -1 for a type left to another style
  void set_type_species(const std::vector<int> &type_to_species);
  // the graph built from the neighbour list on the model's device, see NeighbourInput
  NeighbourOutput compute(const NeighbourInput &input);
  // forward() on a graph in device memory; returns when the outputs are ready to read
  DeviceResult compute(const DeviceGraph &graph);

  static void set_num_threads(int nthreads);
  // once per process: glibc malloc set to keep freed memory for the next step; returns a
  // line for the log, or "" (done before, MLFF_MALLOC=system, the user's own settings)
  static std::string keep_freed_memory();
  // MLFF_PROFILE set (not empty, not 0) in the environment: the styles time their phases
  static bool profile_requested();
  // MLFF_PROFILE=1 in the environment: time per phase of the device path, else ""
  std::string profile_report() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl;
  void smoke_test(const std::string &path);
  void load_native(const std::string &path);
  static Result checked_result(const double *atom_energy, const double *edge_grad,
                               int64_t natoms, int64_t nedges);
};

}    // namespace MLFF

#endif
