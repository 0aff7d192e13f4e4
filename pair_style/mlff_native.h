/* -*- c++ -*- ----------------------------------------------------------
   mlff: the student (mlff_tools/model/student.py) evaluated natively.

   One atom at a time, from its own edges: the sums of the radial basis times
   the angular parts per neighbour species, the radial weights of its species
   pairs, the channel-pair invariants, the readout MLP, and back through all of
   them to d E_i / d edge_vec for each of its edges. The same numbers as the
   TorchScript model's forward() and autograd (the contract in docs/design.md),
   with no tensors between the steps: every edge is read twice (the sums, then
   the gradient), and an atom's intermediates fit in a small scratch block.

   The per-atom functions (atom_sums, atom_readout, atom_gradient; student_atom
   runs the three) take a StudentView (flat arrays and sizes, no containers), so
   that device code (Kokkos, one thread per atom) calls them as they are; this
   file includes no torch and no LAMMPS header. mlff_native.cpp computes a whole
   graph on the host with them, eight atoms at a time through one readout
   (pair_style mlff ... evaluator native, the default for a student's .pt).
------------------------------------------------------------------------- */

#ifndef LMP_MLFF_NATIVE_H
#define LMP_MLFF_NATIVE_H

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

// Device code (pair_mlff_kokkos.cpp) defines MLFF_NATIVE_KOKKOS before including this file:
// the per-atom functions are then Kokkos functions with Kokkos's math, in their own namespace
// (the host build's copies, in mlff_native.cpp, are other functions, not other definitions)
#ifdef MLFF_NATIVE_KOKKOS
#define MLFF_INLINE KOKKOS_INLINE_FUNCTION
#define MLFF_NATIVE_NS kokkos_kernels
#define MLFF_MATH Kokkos
#else
#define MLFF_INLINE inline
#define MLFF_NATIVE_NS host_kernels
#define MLFF_MATH std
#endif

namespace MLFF {

// the student's weights, as mlff_model.cpp reads them from a model file (float64 copies)
struct StudentSpec {
  int n_species = 0, n_radial = 0, n_channels = 0, l_max = 0;
  double cutoff = 0.0;
  std::vector<double> frequencies;        // [n_radial]
  // the radial weights of each species pair, [z_i][z_j][n][(l_max + 1) k]
  std::vector<double> pair_weights;
  std::vector<double> rank3;              // [27][10], l_max 3 only
  std::vector<double> reference_energy;   // [n_species]
  double energy_scale = 1.0, inv_avg_neighbours = 1.0;
  std::vector<double> feature_mean, feature_inv_std;    // [n_descriptors]
  // the readout's linear layers (SiLU between them), weight [out][in] and bias [out]
  std::vector<std::vector<double>> layer_weight, layer_bias;
  std::vector<int> layer_in, layer_out;
};

// everything one atom's computation reads, as flat arrays in the model's dtype
template <typename T> struct StudentView {
  int n_species, n_radial, n_channels, l_max;
  int n_angular;       // 8 (l = 1, 2) or 18 (and l = 3)
  int n_values;        // 1 + n_angular: the l = 0 basis, then each angular part
  int n_descriptors, n_layers, widest;
  T cutoff, envelope_scale, energy_scale, inv_avg_neighbours;
  const T *frequencies, *pair_weights, *rank3, *reference_energy;
  const T *feature_mean, *feature_inv_std;
  const T *weight;     // every layer's [out][in], one after another
  const T *weight_t;   // the same, each [in][out]
  const T *bias;       // every layer's [out]
  const int *layer_in, *layer_out, *weight_offset, *bias_offset;
  int scratch;         // values (T) of scratch that one atom needs
};

// the arrays of a StudentView in two blocks, values (T) and integers, so that a device can
// hold a copy of each and view it as the host does: view_on(values.data(), ints.data())
template <typename T> struct StudentArrays {
  std::vector<T> values;
  std::vector<int> ints;
  StudentView<T> sizes{};    // the sizes and scalars; its pointers are set by view_on

  explicit StudentArrays(const StudentSpec &spec)
  {
    const auto add = [this](const std::vector<double> &from) {
      const std::size_t start = values.size();
      values.insert(values.end(), from.begin(), from.end());
      return start;
    };
    auto &v = sizes;
    v.n_species = spec.n_species;
    v.n_radial = spec.n_radial;
    v.n_channels = spec.n_channels;
    v.l_max = spec.l_max;
    v.n_angular = spec.l_max >= 3 ? 18 : 8;
    v.n_values = 1 + v.n_angular;
    v.n_descriptors = static_cast<int>(spec.feature_mean.size());
    v.n_layers = static_cast<int>(spec.layer_in.size());
    v.cutoff = T(spec.cutoff);
    v.envelope_scale = T(std::sqrt(2.0 / spec.cutoff));
    v.energy_scale = T(spec.energy_scale);
    v.inv_avg_neighbours = T(spec.inv_avg_neighbours);
    at.frequencies = add(spec.frequencies);
    at.pair_weights = add(spec.pair_weights);
    at.rank3 = add(spec.rank3);
    at.reference_energy = add(spec.reference_energy);
    at.feature_mean = add(spec.feature_mean);
    at.feature_inv_std = add(spec.feature_inv_std);
    std::vector<int> weight_offset, bias_offset;
    at.weight = values.size();
    for (const auto &w : spec.layer_weight) weight_offset.push_back(int(add(w) - at.weight));
    at.weight_t = values.size();
    int widest = spec.layer_in[0], activations = 0;
    for (std::size_t layer = 0; layer < spec.layer_in.size(); ++layer) {
      const int in = spec.layer_in[layer], out = spec.layer_out[layer];
      for (int i = 0; i < in; ++i)
        for (int o = 0; o < out; ++o) values.push_back(T(spec.layer_weight[layer][o * in + i]));
      widest = in > widest ? in : widest;
      widest = out > widest ? out : widest;
      activations += 2 * out;
    }
    at.bias = values.size();
    for (const auto &b : spec.layer_bias) bias_offset.push_back(int(add(b) - at.bias));
    for (const auto &list : {spec.layer_in, spec.layer_out, weight_offset, bias_offset})
      ints.insert(ints.end(), list.begin(), list.end());
    v.widest = widest;
    v.scratch = 2 * v.n_species * v.n_radial * v.n_values + 2 * v.n_values * v.n_channels +
                3 * widest + activations;
  }

  // the view with its pointers into blocks (copies of values and ints) at these addresses
  StudentView<T> view_on(const T *value_block, const int *int_block) const
  {
    StudentView<T> v = sizes;
    v.frequencies = value_block + at.frequencies;
    v.pair_weights = value_block + at.pair_weights;
    v.rank3 = value_block + at.rank3;
    v.reference_energy = value_block + at.reference_energy;
    v.feature_mean = value_block + at.feature_mean;
    v.feature_inv_std = value_block + at.feature_inv_std;
    v.weight = value_block + at.weight;
    v.weight_t = value_block + at.weight_t;
    v.bias = value_block + at.bias;
    v.layer_in = int_block;
    v.layer_out = int_block + v.n_layers;
    v.weight_offset = int_block + 2 * v.n_layers;
    v.bias_offset = int_block + 3 * v.n_layers;
    return v;
  }

 private:
  struct {
    std::size_t frequencies, pair_weights, rank3, reference_energy, feature_mean,
        feature_inv_std, weight, weight_t, bias;
  } at{};
};

namespace MLFF_NATIVE_NS {

// scratch with one atom's values `stride` apart (stride: the atoms computed side by side), so
// that on a GPU the threads of a warp read and write neighbouring addresses; a plain pointer
// where an atom's scratch is its own block
template <typename T> struct Strided {
  T *base;
  int64_t stride;
  MLFF_INLINE T &operator[](int64_t k) const { return base[k * stride]; }
  MLFF_INLINE Strided operator+(int64_t k) const { return {base + k * stride, stride}; }
  MLFF_INLINE Strided &operator+=(int64_t k)
  {
    base += k * stride;
    return *this;
  }
};


// the most angular values (1 + 3 + 5 + 10) one edge has
constexpr int MAX_VALUES = 19;

// values kept per edge by student_atom's edge_cache: 1 / r, u, the basis, its derivative and
// the angular parts
template <typename T> MLFF_INLINE int edge_values(const StudentView<T> &w)
{
  return 4 + 2 * w.n_radial + w.n_values;
}

// l of each of the n_values rows: 0, then 1 (x, y, z), 2 (5 values), 3 (10 values)
MLFF_INLINE int row_l(int row)
{
  return row == 0 ? 0 : (row <= 3 ? 1 : (row <= 8 ? 2 : 3));
}

// the first of l's rows, and how many it has
MLFF_INLINE int first_row(int l)
{
  return l == 0 ? 0 : (l == 1 ? 1 : (l == 2 ? 4 : 9));
}
MLFF_INLINE int row_count(int l)
{
  return l == 0 ? 1 : (l == 1 ? 3 : (l == 2 ? 5 : 10));    // l = 3: all 10 symmetric terms
}

// |r| of an edge, its reciprocal in inv_r and its direction in u, in the model's dtype
template <typename T, typename Vec>
MLFF_INLINE T edge_direction(const Vec *vec, T &inv_r, T *u)
{
  const T dx = T(vec[0]), dy = T(vec[1]), dz = T(vec[2]);
  const T r = MLFF_MATH::sqrt(dx * dx + dy * dy + dz * dz);
  inv_r = T(1) / r;
  u[0] = dx * inv_r;
  u[1] = dy * inv_r;
  u[2] = dz * inv_r;
  return r;
}

// b_n(r) = sqrt(2/rc) sin(f_n r) / r f_env(r / rc) and d b_n / dr for n = 0, 1, ... in turn
// (next()); the sines and cosines of f_n r = (n + 1) f_0 r by the angle-addition recurrence
template <typename T> struct RadialSeries {
  T scale, dscale, s, c, s_prev, c_prev, twice_c1;
  MLFF_INLINE RadialSeries(const StudentView<T> &w, T r, T inv_r)
  {
    const T inv_cutoff = T(1) / w.cutoff;
    const T x = r * inv_cutoff;
    T env = 0, denv = 0;
    if (x < T(1)) {
      const T x2 = x * x, x3 = x2 * x;
      env = T(1) - x3 * (T(10) - x * (T(15) - T(6) * x));
      denv = -T(30) * x2 * (T(1) - x) * (T(1) - x);
    }
    scale = env * w.envelope_scale * inv_r;
    dscale = w.envelope_scale * (denv * inv_cutoff - env * inv_r) * inv_r;
    const T angle = w.frequencies[0] * r;
    s = MLFF_MATH::sin(angle);
    c = MLFF_MATH::cos(angle);
    twice_c1 = T(2) * c;
    s_prev = 0;
    c_prev = 1;
  }
  // b_n and d b_n / dr of the next n, whose frequency is f_n
  MLFF_INLINE void next(T f_n, T &b, T &db)
  {
    b = s * scale;
    db = f_n * c * scale + s * dscale;
    const T s_next = twice_c1 * s - s_prev, c_next = twice_c1 * c - c_prev;
    s_prev = s;
    c_prev = c;
    s = s_next;
    c = c_next;
  }
};

// the whole basis into b[n] and db[n], n = 0..n_radial-1
template <typename T, typename P>
MLFF_INLINE void radial_basis(const StudentView<T> &w, T r, T inv_r, P b, P db)
{
  RadialSeries<T> series(w, r, inv_r);
  for (int n = 0; n < w.n_radial; ++n) series.next(w.frequencies[n], b[n], db[n]);
}

// the angular values of unit vector u: 1, then l = 1 (u), l = 2 (5), l = 3 (10)
// (NV: the values y holds where known when compiled, 9 or 19; 0 where it is w.n_values)
template <int NV = 0, typename T, typename P>
MLFF_INLINE void angular_parts(const StudentView<T> &w, const T *u, P y, P cube)
{
  const T x = u[0], yy_ = u[1], z = u[2];
  const T sqrt2 = T(1.4142135623730951), inv_sqrt2 = T(0.7071067811865476),
          inv_sqrt6 = T(0.4082482904638631);
  y[0] = T(1);
  y[1] = x;
  y[2] = yy_;
  y[3] = z;
  y[4] = sqrt2 * x * yy_;
  y[5] = sqrt2 * x * z;
  y[6] = sqrt2 * yy_ * z;
  y[7] = (x * x - yy_ * yy_) * inv_sqrt2;
  y[8] = (T(2) * z * z - x * x - yy_ * yy_) * inv_sqrt6;
  if (NV != 9 && w.l_max >= 3) {
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b)
        for (int c = 0; c < 3; ++c) cube[9 * a + 3 * b + c] = u[a] * u[b] * u[c];
    for (int q = 0; q < 10; ++q) {
      T sum = 0;
      for (int abc = 0; abc < 27; ++abc) sum += cube[abc] * w.rank3[10 * abc + q];
      y[9 + q] = sum;
    }
  }
}

// where one atom's values lie in its scratch
template <typename P> struct AtomScratch {
  P grid, dgrid;       // [S][NR][C] the sums over edges, and their gradient
  P a, da;             // [C][K] the densities, and their gradient
  P features;          // the readout's input; after the readout, d E / d features
  P grad, grad_in;     // the readout's gradients at a layer's output and input
  P act;               // per layer: pre-activation, output
};

template <typename T, typename P>
MLFF_INLINE AtomScratch<P> atom_scratch(const StudentView<T> &w, P scratch)
{
  const int grids = w.n_species * w.n_radial * w.n_values, densities = w.n_values * w.n_channels;
  AtomScratch<P> at;
  at.grid = scratch;
  at.dgrid = scratch + grids;
  at.a = scratch + 2 * grids;
  at.da = scratch + 2 * grids + densities;
  at.features = scratch + 2 * grids + 2 * densities;
  at.grad = at.features + w.widest;
  at.grad_in = at.grad + w.widest;
  at.act = at.grad_in + w.widest;
  return at;
}

/* The sums over an atom's edges without an edge cache (a GPU thread): each edge's NV angular
   values (9, or 19 with l = 3, known when compiled, so that they sit in registers) and its
   basis one n at a time from the recurrence, added into the neighbour species' rows of grid */
template <int NV, typename T, typename Vec, typename P>
MLFF_INLINE void edge_sums(const StudentView<T> &w, int64_t count, const Vec *vec,
                           const int64_t *neighbour, const int64_t *species, P grid)
{
  const int NR = w.n_radial;
  for (int64_t e = 0; e < count; ++e) {
    T inv_r, u[3], y[NV], cube[NV == 9 ? 1 : 27];
    const T r = edge_direction(vec + 3 * e, inv_r, u);
    angular_parts<NV>(w, u, y, cube);
    RadialSeries<T> series(w, r, inv_r);
    P row = grid + species[neighbour[e]] * NR * NV;
    for (int n = 0; n < NR; ++n) {
      T b, db;
      series.next(w.frequencies[n], b, db);
      for (int c = 0; c < NV; ++c) row[n * NV + c] += b * y[c];
    }
  }
}

/* One atom, in three steps (student_atom runs them in turn; the host batches the middle one
   over atoms). vec[3 * e] is r_j - r_i of the atom's edge e, the species of its neighbour is
   species[neighbour[e]]; scratch holds w.scratch values (a pointer, or Strided). edge_cache,
   where given, holds edge_values(w) values per edge: each edge's basis and angular parts
   kept from the sums for the gradient (the host), else computed again (a GPU thread, whose
   memory is better spent on more threads).
   atom_sums: the sums over the edges, the densities and the readout's input (features). */
template <typename T, typename Vec, typename P>
MLFF_INLINE void atom_sums(const StudentView<T> &w, int zi, int64_t count, const Vec *vec,
                           const int64_t *neighbour, const int64_t *species, P scratch,
                           T *edge_cache = nullptr, const P *own_grid = nullptr)
{
  const int S = w.n_species, NR = w.n_radial, K = w.n_channels, C = w.n_values;
  const int width = (w.l_max + 1) * K;
  const AtomScratch<P> at = atom_scratch(w, scratch);
  P grid = own_grid ? *own_grid : at.grid, a = at.a, features = at.features;

  for (int i = 0; i < S * NR * C; ++i) grid[i] = 0;
  if (!edge_cache) {
    if (C == 9)
      edge_sums<9>(w, count, vec, neighbour, species, grid);
    else
      edge_sums<19>(w, count, vec, neighbour, species, grid);
  } else {
    // the host: each edge's values kept in edge_cache for atom_gradient
    for (int64_t e = 0; e < count; ++e) {
      T inv_r, u[3], cube[27];
      const T r = edge_direction(vec + 3 * e, inv_r, u);
      T *keep = edge_cache + e * edge_values(w);
      T *eb = keep + 4, *edb = keep + 4 + NR, *ey = keep + 4 + 2 * NR;
      radial_basis(w, r, inv_r, eb, edb);
      angular_parts(w, u, ey, cube);
      keep[0] = inv_r;
      keep[1] = u[0];
      keep[2] = u[1];
      keep[3] = u[2];
      P row = grid + species[neighbour[e]] * NR * C;
      for (int n = 0; n < NR; ++n)
        for (int c = 0; c < C; ++c) row[n * C + c] += eb[n] * ey[c];
    }
  }

  // the densities: each row's sums through the radial weights of the atom's species pairs
  for (int c = 0; c < C; ++c) {
    P arow = a + c * K;
    for (int ch = 0; ch < K; ++ch) arow[ch] = 0;
    const int column = row_l(c) * K;
    for (int z = 0; z < S; ++z)
      for (int n = 0; n < NR; ++n) {
        const T sum = grid[(z * NR + n) * C + c];
        const T *weights = w.pair_weights + ((zi * S + z) * NR + n) * width + column;
        for (int ch = 0; ch < K; ++ch) arow[ch] += sum * weights[ch];
      }
    for (int ch = 0; ch < K; ++ch) arow[ch] *= w.inv_avg_neighbours;
  }

  // descriptors: A0, then per l the channel-pair products summed over the l's rows
  int q = 0;
  for (int ch = 0; ch < K; ++ch) features[q++] = a[ch];
  for (int l = 0; l <= w.l_max; ++l) {
    const int first = first_row(l), rows = row_count(l);
    for (int ch = 0; ch < K; ++ch)
      for (int d = ch; d < K; ++d) {
        T sum = 0;
        for (int m = first; m < first + rows; ++m) sum += a[m * K + ch] * a[m * K + d];
        features[q++] = sum;
      }
  }
  for (int f = 0; f < w.n_descriptors; ++f)
    features[f] = (features[f] - w.feature_mean[f]) * w.feature_inv_std[f];
  for (int s = 0; s < S; ++s) features[w.n_descriptors + s] = s == zi ? T(1) : T(0);

}

// y[c] = bias[c] + sum_r m[r][c] x[r] for the cols columns of the rows x cols matrix m (bias
// may be null: zero), COLUMNS of y at a time in registers: x is read once per block of
// columns and y written once, where adding into y in the scratch had read and written it for
// every element of m (on a GPU thread the scratch is global memory)
constexpr int COLUMNS = 8;
template <typename T, typename P>
MLFF_INLINE void dense_columns(const T *m, int rows, int cols, const T *bias, P x, P y)
{
  int c0 = 0;
  for (; c0 + COLUMNS <= cols; c0 += COLUMNS) {
    T acc[COLUMNS];
    for (int j = 0; j < COLUMNS; ++j) acc[j] = bias ? bias[c0 + j] : T(0);
    for (int r = 0; r < rows; ++r) {
      const T xr = x[r];
      const T *row = m + r * cols + c0;
      for (int j = 0; j < COLUMNS; ++j) acc[j] += row[j] * xr;
    }
    for (int j = 0; j < COLUMNS; ++j) y[c0 + j] = acc[j];
  }
  for (; c0 < cols; ++c0) {
    T acc = bias ? bias[c0] : T(0);
    for (int r = 0; r < rows; ++r) acc += m[r * cols + c0] * x[r];
    y[c0] = acc;
  }
}

// the readout of the atom's features and its gradient, left in their place; its energy
template <typename T, typename P>
MLFF_INLINE T atom_readout(const StudentView<T> &w, int zi, P scratch)
{
  const AtomScratch<P> at = atom_scratch(w, scratch);
  P features = at.features, grad = at.grad, grad_in = at.grad_in, act = at.act;
  // the readout, keeping each layer's pre-activation for the way back
  P input = features;
  P layer_act = act;
  T output = 0;
  for (int layer = 0; layer < w.n_layers; ++layer) {
    const int in = w.layer_in[layer], out = w.layer_out[layer];
    P pre = layer_act, post = layer_act + out;
    const T *wt = w.weight_t + w.weight_offset[layer];
    const T *bias = w.bias + w.bias_offset[layer];
    dense_columns<T>(wt, in, out, bias, input, pre);
    if (layer + 1 < w.n_layers)
      for (int o = 0; o < out; ++o) post[o] = pre[o] / (T(1) + MLFF_MATH::exp(-pre[o]));
    else
      output = pre[0];
    input = post;
    layer_act += 2 * out;
  }
  const T energy = w.reference_energy[zi] + w.energy_scale * output;

  // back through the readout: grad holds d E / d (a layer's output), then its input
  grad[0] = w.energy_scale;
  for (int layer = w.n_layers - 1; layer >= 0; --layer) {
    const int in = w.layer_in[layer], out = w.layer_out[layer];
    if (layer + 1 < w.n_layers) {
      P pre = act;
      for (int l = 0; l < layer; ++l) pre += 2 * w.layer_out[l];
      for (int o = 0; o < out; ++o) {
        const T sigmoid = T(1) / (T(1) + MLFF_MATH::exp(-pre[o]));
        grad[o] *= sigmoid * (T(1) + pre[o] * (T(1) - sigmoid));
      }
    }
    const T *wm = w.weight + w.weight_offset[layer];
    dense_columns<T>(wm, out, in, nullptr, grad, grad_in);
    P swap = grad;
    grad = grad_in;
    grad_in = swap;
  }
  for (int f = 0; f < w.layer_in[0]; ++f) features[f] = grad[f];
  return energy;
}

// one edge's d E / d edge_vec into out[3], from d E / d r (de_dr) and d E / d y (hy, NV
// values: 9, 19, or 0 where w.n_values when compiled); cube: 27 values of room (l = 3)
template <int NV, typename T, typename Grad>
MLFF_INLINE void edge_gradient(const StudentView<T> &w, const T *u, T inv_r, T de_dr,
                               const T *hy, T *cube, Grad *out)
{
  const T sqrt2 = T(1.4142135623730951), two_over_sqrt6 = T(0.8164965809277261);
  const T x = u[0], yv = u[1], z = u[2];
  T gu[3] = {hy[1], hy[2], hy[3]};
  gu[0] += sqrt2 * (hy[4] * yv + hy[5] * z + hy[7] * x) - two_over_sqrt6 * x * hy[8];
  gu[1] += sqrt2 * (hy[4] * x + hy[6] * z - hy[7] * yv) - two_over_sqrt6 * yv * hy[8];
  gu[2] += sqrt2 * (hy[5] * x + hy[6] * yv) + T(2) * two_over_sqrt6 * z * hy[8];
  if (NV != 9 && w.l_max >= 3) {
    // cube[abc] now: sum_q rank3[abc][q] dE/dy_q; d(u_a u_b u_c) / du picks each factor
    for (int abc = 0; abc < 27; ++abc) {
      T sum = 0;
      for (int qq = 0; qq < 10; ++qq) sum += w.rank3[10 * abc + qq] * hy[9 + qq];
      cube[abc] = sum;
    }
    for (int p = 0; p < 3; ++p)
      for (int s = 0; s < 3; ++s)
        for (int t = 0; t < 3; ++t) {
          const T uu = u[s] * u[t];
          gu[p] += (cube[9 * p + 3 * s + t] + cube[9 * s + 3 * p + t] +
                    cube[9 * s + 3 * t + p]) * uu;
        }
  }
  const T radial = gu[0] * u[0] + gu[1] * u[1] + gu[2] * u[2];
  for (int k = 0; k < 3; ++k) out[k] = Grad(de_dr * u[k] + (gu[k] - radial * u[k]) * inv_r);
}

// the edges' gradients without an edge cache (a GPU thread), as edge_sums computes the edges:
// NV angular values and d E / d y in registers, the basis one n at a time
template <int NV, typename T, typename Vec, typename P, typename Grad>
MLFF_INLINE void edge_gradients(const StudentView<T> &w, int64_t count, const Vec *vec,
                                const int64_t *neighbour, const int64_t *species, P dgrid,
                                Grad *edge_grad)
{
  const int NR = w.n_radial;
  for (int64_t e = 0; e < count; ++e) {
    T inv_r, u[3], y[NV], hy[NV], cube[NV == 9 ? 1 : 27];
    const T r = edge_direction(vec + 3 * e, inv_r, u);
    angular_parts<NV>(w, u, y, cube);
    RadialSeries<T> series(w, r, inv_r);
    P drow = dgrid + species[neighbour[e]] * NR * NV;
    for (int c = 0; c < NV; ++c) hy[c] = 0;
    T de_dr = 0;
    for (int n = 0; n < NR; ++n) {
      T b, db, g = 0;
      series.next(w.frequencies[n], b, db);
      for (int c = 0; c < NV; ++c) {
        const T d = drow[n * NV + c];
        g += d * y[c];
        hy[c] += d * b;
      }
      de_dr += g * db;
    }
    edge_gradient<NV>(w, u, inv_r, de_dr, hy, cube, edge_grad + 3 * e);
  }
}

// atom_gradient: from d E / d features back to each edge's d E / d edge_vec
template <typename T, typename Vec, typename Grad, typename P>
MLFF_INLINE void atom_gradient(const StudentView<T> &w, int zi, int64_t count, const Vec *vec,
                               const int64_t *neighbour, const int64_t *species,
                               Grad *edge_grad, P scratch, T *edge_cache = nullptr,
                               const P *own_grid = nullptr)
{
  const int S = w.n_species, NR = w.n_radial, K = w.n_channels, C = w.n_values;
  const int width = (w.l_max + 1) * K;
  const AtomScratch<P> at = atom_scratch(w, scratch);
  P dgrid = own_grid ? *own_grid : at.dgrid, a = at.a, da = at.da, features = at.features;
  T hy[MAX_VALUES], cube[27];    // the edge cache's path

  // the readout left d E / d features where the features were; to the raw descriptors
  P dfeatures = features;
  for (int f = 0; f < w.n_descriptors; ++f) dfeatures[f] *= w.feature_inv_std[f];

  for (int i = 0; i < C * K; ++i) da[i] = 0;
  int q = 0;
  for (int ch = 0; ch < K; ++ch) da[ch] += dfeatures[q++];
  for (int l = 0; l <= w.l_max; ++l) {
    const int first = first_row(l), rows = row_count(l);
    for (int ch = 0; ch < K; ++ch)
      for (int d = ch; d < K; ++d) {
        const T g = dfeatures[q++];
        for (int m = first; m < first + rows; ++m) {
          da[m * K + ch] += g * a[m * K + d];
          da[m * K + d] += g * a[m * K + ch];
        }
      }
  }
  for (int z = 0; z < S; ++z)
    for (int n = 0; n < NR; ++n) {
      const T *weights = w.pair_weights + ((zi * S + z) * NR + n) * width;
      for (int c = 0; c < C; ++c) {
        const T *wc = weights + row_l(c) * K;
        P dac = da + c * K;
        T sum = 0;
        for (int ch = 0; ch < K; ++ch) sum += dac[ch] * wc[ch];
        dgrid[(z * NR + n) * C + c] = sum * w.inv_avg_neighbours;
      }
    }

  // each edge: d E / d b_n and d E / d y, then through r and the unit vector
  if (!edge_cache) {
    if (C == 9)
      edge_gradients<9>(w, count, vec, neighbour, species, dgrid, edge_grad);
    else
      edge_gradients<19>(w, count, vec, neighbour, species, dgrid, edge_grad);
    return;
  }
  for (int64_t e = 0; e < count; ++e) {
    const T *keep = edge_cache + e * edge_values(w);
    const T inv_r = keep[0];
    const T u[3] = {keep[1], keep[2], keep[3]};
    const T *eb = keep + 4, *edb = keep + 4 + NR, *ey = keep + 4 + 2 * NR;
    P drow = dgrid + species[neighbour[e]] * NR * C;
    for (int c = 0; c < C; ++c) hy[c] = 0;
    T de_dr = 0;
    for (int n = 0; n < NR; ++n) {
      T g = 0;
      for (int c = 0; c < C; ++c) {
        g += drow[n * C + c] * ey[c];
        hy[c] += drow[n * C + c] * eb[n];
      }
      de_dr += g * edb[n];
    }
    edge_gradient<0>(w, u, inv_r, de_dr, hy, cube, edge_grad + 3 * e);
  }
}

// one atom: its energy (returned) and its edges' gradients (edge_grad[3 * e]); own_grid,
// where given, holds the sums over the edges and then their gradient (w.n_species
// n_radial n_values values) instead of the scratch: a GPU block's shared memory, where the
// sums' additions, one per edge and grid value, cost far less than in global memory
template <typename T, typename Vec, typename Grad, typename P>
MLFF_INLINE T student_atom(const StudentView<T> &w, int zi, int64_t count, const Vec *vec,
                           const int64_t *neighbour, const int64_t *species, Grad *edge_grad,
                           P scratch, T *edge_cache = nullptr, const P *own_grid = nullptr)
{
  atom_sums(w, zi, count, vec, neighbour, species, scratch, edge_cache, own_grid);
  const T energy = atom_readout(w, zi, scratch);
  atom_gradient(w, zi, count, vec, neighbour, species, edge_grad, scratch, edge_cache,
                own_grid);
  return energy;
}

// the values of one atom's grid (the sums over its edges, then their gradient)
template <typename T> MLFF_INLINE int grid_values(const StudentView<T> &w)
{
  return w.n_species * w.n_radial * w.n_values;
}

}    // namespace MLFF_NATIVE_NS

class NativeModel {
 public:
  virtual ~NativeModel() = default;
  // atom_energy [natoms] and edge_grad [3 nedges] of a graph, as the contract's forward();
  // any edge order (each centre's edges are gathered first where they are not together)
  virtual void compute(int64_t natoms, const int64_t *species, int64_t nedges,
                       const int64_t *centre, const int64_t *neighbour, const double *edge_vec,
                       double *atom_energy, double *edge_grad) = 0;
};

// "" where the spec describes a student this code computes, else why not
std::string check_student_spec(const StudentSpec &spec);
// the evaluator for the model's dtype ("float32" or "float64"); threads from ATen's settings
NativeModel *make_native_model(const StudentSpec &spec, const std::string &dtype);

}    // namespace MLFF

#endif
