/* -*- c++ -*- ----------------------------------------------------------
   mlff: pair_style mlff, a strictly local machine-learned force field
   exported by mlff-tools as one TorchScript file (see docs/design.md).
------------------------------------------------------------------------- */

#ifndef LMP_PAIR_MLFF_H
#define LMP_PAIR_MLFF_H

#include "pair.h"

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace MLFF {
class Model;
struct Graph;
struct NeighbourOutput;
struct DeviceRequest;
struct DeviceResult;
}    // namespace MLFF

namespace LAMMPS_NS {

class PairMLFF : public Pair {
 public:
  PairMLFF(class LAMMPS *);
  ~PairMLFF() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;

 protected:
  std::unique_ptr<MLFF::Model> model;
  std::unique_ptr<MLFF::Graph> graph;
  std::string model_path;
  double cutoff;
  std::vector<int> type_to_species;    // LAMMPS type -> model species index, -1 for NULL
  bool graph_on_device;                // build the graph on the model's device (`graph device`)
  bool kokkos_style;                   // this is mlff/kk
  bool kokkos_on_gpu;                  // ... and its kernels run on a GPU (not OpenMP/Serial)
  std::vector<int> centres, offsets, neighbours;    // the neighbour list, flattened
  // MLFF_PROFILE=1: seconds in each of a step's three phases (graph host: graph, model,
  // scatter; mlff/kk: edges, model, tally, fenced), logged per call when the style is
  // deleted; `graph device` keeps its own (MLFF::Model::profile_report)
  bool profile;
  std::array<const char *, 3> profile_phases;
  double phase_seconds[3];
  int64_t profiled_calls;
  int64_t last_nedges;
  std::chrono::steady_clock::time_point phase_start;

  void allocate();
  void check_units();
  void check_masses();
  void build_graph();
  void scatter(const double *atom_energy, const double *edge_grad);
  void compute_on_device();
  // MLFF_PROFILE=1: ends `phase` (-1: starts a step's first) after profile_fence()
  void profile_mark(int phase);
  virtual void profile_fence() {}
  void check_device_result(const MLFF::NeighbourOutput &out);
  const char *style_name() const { return kokkos_style ? "mlff/kk" : "mlff"; }
  // stop the run with the error of every path: i, j are local atom indices
  void stop_overlap(int i, int j, double distance);
  void stop_non_finite_energy(int i);
  void stop_non_finite_force(int i, int j, double distance);
  // where the model goes: the user's `device` keyword here, Kokkos's device in mlff/kk
  virtual void choose_device(MLFF::DeviceRequest &request);
};

}    // namespace LAMMPS_NS

#endif
