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
};

// Where the model runs: "cpu", "cuda" or "auto" (cuda when available).
struct DeviceRequest {
  std::string kind = "cpu";
  int node_local_rank = 0;    // picks the GPU when several ranks share a node
};

// A graph in host memory, as the contract's forward() takes it.
struct Graph {
  std::vector<int64_t> species;      // [N]
  std::vector<int64_t> centre;       // [E], row 0 of edge_index
  std::vector<int64_t> neighbour;    // [E], row 1 of edge_index
  std::vector<double> edge_vec;      // [E*3], r_j - r_i in Angstrom
  void clear()
  {
    species.clear();
    centre.clear();
    neighbour.clear();
    edge_vec.clear();
  }
};

// Outputs in host memory, float64, valid until the next call to compute().
struct Result {
  const double *atom_energy = nullptr;    // [N], eV
  const double *edge_grad = nullptr;      // [E*3], eV/Angstrom
  int64_t first_bad_atom = -1;            // first atom with a non-finite energy, or -1
  int64_t first_bad_edge = -1;            // first edge with a non-finite gradient, or -1
};

class Model {
 public:
  Model(const std::string &path, const DeviceRequest &device);
  ~Model();
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;

  const ModelMetadata &metadata() const;
  std::string device_name() const;
  Result compute(const Graph &graph);

  static void set_num_threads(int nthreads);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl;
};

}    // namespace MLFF

#endif
