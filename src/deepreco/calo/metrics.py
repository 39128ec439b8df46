"""Clustering metrics on truth: matching, efficiency, fake rate, energy response and resolution, class accuracy.

A particle and a cluster share S = sum over the cluster's hits of hit energy x the particle's fraction of it.
The particle is **found** when S > 1/2 of the particle's deposited energy and S > 1/2 of the cluster's
energy (at most one cluster can do both). **Efficiency**: found / reconstructable particles (true energy
>= ``min_energy`` GeV and at least ``min_hits`` hits). **Fake rate**: clusters of at least
``min_cluster_energy`` GeV that found no particle, over all such clusters (pieces of a split shower count as
fakes). **Response**: cluster energy / the particle's true energy, for found particles; **resolution**:
half the 16-84 % width of the response over its median, over showering particles (EM and hadronic; a muon's
energy is not what a calorimeter measures).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_ENERGY = 2.0
MIN_HITS = 5
MIN_CLUSTER_ENERGY = 1.0


def match(event, hit_table: pd.DataFrame, clusters: pd.DataFrame) -> pd.DataFrame:
    """One row per (particle, cluster) sharing energy: particle_id, cluster_id, shared, found."""
    hits = event.hits
    frac = event.fractions
    e_hit = pd.Series(hits["energy"].to_numpy(), index=hits["hit_id"].to_numpy())
    c_of = pd.Series(hit_table["cluster_id"].to_numpy(), index=hit_table["hit_id"].to_numpy())
    f = frac.assign(e=frac["fraction"].to_numpy() * e_hit.loc[frac["hit_id"].to_numpy()].to_numpy(),
                    cluster_id=c_of.reindex(frac["hit_id"].to_numpy()).fillna(-1).to_numpy(np.int64))
    dep = f.groupby("particle_id")["e"].sum()
    f = f[f["cluster_id"] >= 0]
    shared = f.groupby(["particle_id", "cluster_id"])["e"].sum().rename("shared").reset_index()
    e_cluster = (pd.DataFrame({"c": c_of.to_numpy(), "e": e_hit.reindex(c_of.index).to_numpy()})
                 .query("c >= 0").groupby("c")["e"].sum())
    shared["found"] = ((shared["shared"] > 0.5 * dep.loc[shared["particle_id"]].to_numpy()) &
                       (shared["shared"] > 0.5 * e_cluster.reindex(shared["cluster_id"]).to_numpy()))
    return shared


def robust_resolution(response: np.ndarray) -> tuple[float, float]:
    """(median, half the 16-84 % width over the median) of a response sample; NaN when empty."""
    response = np.asarray(response, dtype=np.float64)
    if len(response) < 2:
        return (float(np.median(response)) if len(response) else float("nan")), float("nan")
    q16, q50, q84 = np.percentile(response, [16, 50, 84])
    return float(q50), float((q84 - q16) / 2 / q50) if q50 > 0 else float("nan")


def particle_table(event, hit_table, clusters, min_energy=MIN_ENERGY, min_hits=MIN_HITS) -> pd.DataFrame:
    """The event's reconstructable particles with found, the found cluster's id and energy, and response."""
    p = event.particles
    p = p[(p["energy"] >= min_energy) & (p["n_hits"] >= min_hits)].copy()
    m = match(event, hit_table, clusters)
    found = m[m["found"]].drop_duplicates("particle_id").set_index("particle_id")
    p["found"] = p["particle_id"].isin(found.index)
    p["cluster_id"] = found["cluster_id"].reindex(p["particle_id"]).fillna(-1).to_numpy(np.int64)
    e_cl = pd.Series(clusters["energy"].to_numpy(), index=clusters["cluster_id"].to_numpy())
    p["reco_energy"] = e_cl.reindex(p["cluster_id"]).to_numpy()
    p["response"] = p["reco_energy"] / p["energy"]
    return p


def event_counts(event, hit_table, clusters, predicted_class=None, min_cluster_energy=MIN_CLUSTER_ENERGY) -> dict:
    """Counts of one event that add up over events: particles, found, clusters, fakes, hits, correct classes."""
    p = particle_table(event, hit_table, clusters)
    m = match(event, hit_table, clusters)
    big = clusters[clusters["energy"] >= min_cluster_energy]["cluster_id"]
    matched = set(m.loc[m["found"], "cluster_id"].tolist())
    out = {"particles": len(p), "found": int(p["found"].sum()), "clusters": int(len(big)),
           "fakes": int((~big.isin(matched)).sum()), "hits": len(event.hits)}
    if predicted_class is not None:
        out["class_correct"] = int((np.asarray(predicted_class) == event.truth["hit_class"].to_numpy()).sum())
    return out


def summarise(counts: list[dict], particles: pd.DataFrame) -> dict:
    """Efficiency, fake rate, response and resolution (overall, per kind, per energy bin), class accuracy."""
    tot = {k: sum(c.get(k, 0) for c in counts) for k in ("particles", "found", "clusters", "fakes", "hits",
                                                             "class_correct")}
    found = particles[particles["found"]]
    # a calorimeter measures showers; a muon's MIP track says nothing of its energy
    med, res = robust_resolution(found.loc[found["kind"] != 3, "response"].to_numpy()) if len(found) else (
        float("nan"), float("nan"))
    out = {
        "efficiency": tot["found"] / tot["particles"] if tot["particles"] else float("nan"),
        "fake_rate": tot["fakes"] / tot["clusters"] if tot["clusters"] else float("nan"),
        "energy_response": med, "energy_resolution": res,
        "particles": tot["particles"], "found": tot["found"], "clusters": tot["clusters"],
    }
    if any("class_correct" in c for c in counts):
        out["hit_class_accuracy"] = tot["class_correct"] / tot["hits"] if tot["hits"] else float("nan")
    names = {1: "em", 2: "had", 3: "mip"}
    out["per_kind"] = {}
    for kind, name in names.items():
        sel = particles[particles["kind"] == kind]
        fsel = sel[sel["found"]]
        m, r = robust_resolution(fsel["response"].to_numpy())
        out["per_kind"][name] = {"particles": int(len(sel)), "efficiency": float(sel["found"].mean()) if len(sel)
                                 else float("nan"), "energy_response": m, "energy_resolution": r}
    return out


def resolution_vs_energy(particles: pd.DataFrame, edges=(2, 10, 20, 40, 70, 100, 200)) -> pd.DataFrame:
    """Response median and resolution of found particles per kind and true-energy bin."""
    rows = []
    found = particles[particles["found"]]
    for kind in sorted(found["kind"].unique()):
        sel = found[found["kind"] == kind]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            s = sel[(sel["energy"] >= lo) & (sel["energy"] < hi)]
            m, r = robust_resolution(s["response"].to_numpy())
            rows.append({"kind": int(kind), "e_lo": lo, "e_hi": hi, "n": len(s), "response": m, "resolution": r})
    return pd.DataFrame(rows)
