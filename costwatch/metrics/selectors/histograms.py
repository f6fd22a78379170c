"""Many histograms at once, as numpy matrices (costwatch.metrics.buckets holds one histogram's code)."""

import itertools

import numpy as np

from .. import buckets


def hist_matrix(hists) -> np.ndarray:
    """Histograms (lists of bucket counts, any length, None = empty) as one rows x N_BUCKETS int64
    matrix, filled in one vectorised step from their concatenation (not a slice assignment per row)."""
    hists = [hist or () for hist in hists]
    matrix = np.zeros((len(hists), buckets.N_BUCKETS), dtype=np.int64)
    lengths = np.fromiter((len(hist) for hist in hists), dtype=np.int64, count=len(hists))
    total = int(lengths.sum())
    if total:
        rows = np.repeat(np.arange(len(hists)), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        matrix[rows, np.arange(total) - starts] = np.fromiter(itertools.chain.from_iterable(hists), dtype=np.int64,
                                                              count=total)
    return matrix


def _trimmed_rows(matrix: np.ndarray) -> list[list[int]]:
    """Each row as a list cut after its last non-zero bucket (buckets.trim)."""
    nonzero = matrix != 0
    lengths = np.where(nonzero.any(axis=1), matrix.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)
    width = int(lengths.max()) if len(lengths) else 0
    rows = matrix[:, :width].tolist()
    return [row if length == width else row[:length] for row, length in zip(rows, lengths.tolist(), strict=True)]


def hist_sum(hists) -> list[int]:
    """buckets.merge_all(hists) (the same trimmed list) for many histograms at once."""
    hists = list(hists)
    if not hists:
        return []
    return _trimmed_rows(hist_matrix(hists).sum(axis=0, keepdims=True))[0]
