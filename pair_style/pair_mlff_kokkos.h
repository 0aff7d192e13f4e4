/* -*- c++ -*- ----------------------------------------------------------
   mlff: pair_style mlff/kk, the Kokkos form of pair_style mlff.

   Positions, the Kokkos full neighbour list, the edge list and the forces
   stay in the memory of Kokkos's execution space (the GPU with CUDA, host
   memory for OpenMP/Serial). Edges are counted, scanned and filled by
   Kokkos kernels; the model reads them in place (torch::from_blob, no
   copy) and its edge gradients are scattered into f, energy and virial by
   Kokkos kernels. Same model files, keywords and errors as pair_style mlff.
   Built only against a Kokkos-enabled LAMMPS (see kokkos/README.md).
------------------------------------------------------------------------- */

#ifndef LMP_PAIR_MLFF_KOKKOS_H
#define LMP_PAIR_MLFF_KOKKOS_H

#include "kokkos_type.h"
#include "pair_kokkos.h"
#include "pair_mlff.h"

#define MLFF_NATIVE_KOKKOS
#include "mlff_native.h"

#include <cstdint>

namespace LAMMPS_NS {

template <class DeviceType> class PairMLFFKokkos : public PairMLFF {
 public:
  typedef DeviceType device_type;
  typedef ArrayTypes<DeviceType> AT;
  // views the model reads and writes in place, in the execution space's memory
  typedef Kokkos::View<int64_t *, Kokkos::LayoutRight, DeviceType> t_int64_1d;
  typedef Kokkos::View<double *, Kokkos::LayoutRight, DeviceType> t_double_1d;
  typedef Kokkos::View<const double *, Kokkos::LayoutRight, DeviceType,
                       Kokkos::MemoryTraits<Kokkos::Unmanaged>>
      t_const_double_um;

  PairMLFFKokkos(class LAMMPS *);
  ~PairMLFFKokkos() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;

  // kernels (public: CUDA lambdas may not live in private members)
  int64_t build_edges();
  void tally(const MLFF::DeviceResult &result, int64_t nedges);
  void report_problems(double min_rsq, int64_t nedges, const MLFF::DeviceResult *result);
  // evaluator native: the student's own kernel, one thread per centre, on the device
  template <typename T>
  MLFF::DeviceResult native_compute(const MLFF::StudentView<T> &student,
                                    Kokkos::View<T *, DeviceType> &scratch, int64_t nedges);

 protected:
  void choose_device(MLFF::DeviceRequest &request) override;
  void profile_fence() override { Kokkos::fence("mlff:profile"); }

  typename AT::t_int_1d d_type_species;    // LAMMPS type -> model species, -1 for NULL
  typename AT::t_int_1d d_count;           // [inum] edges of each centre
  typename AT::t_int_1d d_first;           // [inum] where each centre's edges start
  t_int64_1d d_species;                    // [nall]
  t_int64_1d d_edge_index;                 // [2*capacity]: centres, then neighbours
  t_double_1d d_edge_vec;                  // [3*capacity]
  t_double_1d d_edge_rsq;                  // [capacity]

  // evaluator native: the student's arrays in device memory (one dtype in use), the model
  // they came from, per-centre scratch and the outputs the tally reads
  const MLFF::Model *native_model = nullptr;
  Kokkos::View<float *, DeviceType> d_values32, d_scratch32;
  Kokkos::View<double *, DeviceType> d_values64, d_scratch64;
  Kokkos::View<int *, DeviceType> d_native_ints;
  MLFF::StudentView<float> native32{};
  MLFF::StudentView<double> native64{};
  t_double_1d d_native_energy, d_native_grad;
  void upload_native();

  DAT::ttransform_kkacc_1d k_eatom;
  DAT::ttransform_kkacc_1d_6 k_vatom;
};

}    // namespace LAMMPS_NS

#endif
