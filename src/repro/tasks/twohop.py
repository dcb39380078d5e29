"""Two-hop knowledge-graph task ("twohop"): study C's synthetic composition task at small scale.

Owns the knowledge graph (`build_kg`) and its splits, following the generator of study C
(docs/studies.md §3.2, `composition.ipynb`):

- entities `e0..e{N-1}`, relations `r0..r{R-1}`; every head h gets `out_degree` distinct relations, each
  with a uniformly drawn tail: the atomic facts (h, r, t);
- a share `ood_ratio` of the atomic facts is OOD; all atomic facts are trained on;
- every path h -r1-> b -r2-> t is a two-hop query (h, r1, r2) with bridge b and answer t. Both hops ID:
  test_inferred_iid with probability `iid_test_prob`, else the training pool. Both hops OOD:
  test_inferred_ood. One hop of each: discarded;
- the training two-hop items are `phi * |ID atomic facts|` items drawn from the pool (capped by its size).

Each stage draws from its own stream, so changing `phi` keeps the facts and the test sets identical.

Splits: "train" (all atomic facts + the two-hop subsample; meta["kind"] is "atomic" or "twohop"),
"id_atomic", "ood_atomic", "train_inferred", "id" (= test_inferred_iid), "ood" (= test_inferred_ood).
Prompts are `e12 r3 r7` (two-hop) or `e12 r3` (atomic); the answer is the tail `e44`. A CoT completion is
`e91 e44` (bridge, tail), a no-CoT completion `e44`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from pydantic import Field

from repro.identity import stable_seed
from repro.records import Problem, Score
from repro.tasks import TASKS, Task, TaskArgs
from repro.tasks.countdown import split_rng

END_TOKEN = "</a>"  # study C's end-of-answer marker; tokens after it are ignored by the scorer

Fact = tuple[int, int, int]  # (h, r, t)
Path = tuple[int, int, int, int, int]  # (h, r1, r2, b, t)


class TwoHopArgs(TaskArgs):
    """Arguments of the two-hop knowledge graph."""

    n_entities: int = Field(200, ge=2, description="Number of entities |E| (tokens e0..e{N-1}).")
    n_relations: int = Field(20, ge=1, description="Number of relations |R| (tokens r0..r{R-1}).")
    out_degree: int = Field(10, ge=1, description="Distinct relations per head entity (atomic facts per head).")
    ood_ratio: float = Field(0.1, ge=0.0, le=1.0, description="Share of atomic facts that are OOD.")
    phi: float = Field(
        7.2, ge=0.0, description="Training two-hop items = phi x |ID atomic facts|, capped by the pool size."
    )
    iid_test_prob: float = Field(
        0.03, ge=0.0, le=1.0, description="Probability that an ID-ID two-hop path is held out for the id split."
    )


@dataclass(frozen=True)
class KG:
    """A built knowledge graph and its item sets (entity and relation indices)."""

    atomic: dict[tuple[int, int], int]
    id_atomic: tuple[Fact, ...]
    ood_atomic: tuple[Fact, ...]
    pool: tuple[Path, ...]
    train_twohop: tuple[Path, ...]
    test_iid: tuple[Path, ...]
    test_ood: tuple[Path, ...]


@lru_cache(maxsize=8)
def build_kg(args: TwoHopArgs, seed: int) -> KG:
    """Build the knowledge graph deterministically from (args, seed); cached per (args, seed)."""
    if args.out_degree > args.n_relations:
        raise ValueError("out_degree cannot exceed n_relations")
    rng = random.Random(stable_seed("twohop", seed, "facts", args.n_entities, args.n_relations, args.out_degree))
    facts: list[Fact] = []
    for h in range(args.n_entities):
        for r in rng.sample(range(args.n_relations), args.out_degree):
            facts.append((h, r, rng.randrange(args.n_entities)))
    rng_ood = random.Random(stable_seed("twohop", seed, "ood", args.ood_ratio))
    ood_idx = set(rng_ood.sample(range(len(facts)), round(args.ood_ratio * len(facts))))
    ood = {facts[i][:2] for i in ood_idx}
    atomic = {(h, r): t for h, r, t in facts}
    out_edges: dict[int, list[tuple[int, int]]] = {}
    for h, r, t in facts:
        out_edges.setdefault(h, []).append((r, t))

    rng_iid = random.Random(stable_seed("twohop", seed, "iid", args.ood_ratio, args.iid_test_prob))
    pool: list[Path] = []
    test_iid: list[Path] = []
    test_ood: list[Path] = []
    for h in range(args.n_entities):
        for r1, b in out_edges.get(h, []):
            for r2, t in out_edges.get(b, []):
                o1, o2 = (h, r1) in ood, (b, r2) in ood
                if o1 or o2:
                    if o1 and o2:
                        test_ood.append((h, r1, r2, b, t))
                elif rng_iid.random() < args.iid_test_prob:
                    test_iid.append((h, r1, r2, b, t))
                else:
                    pool.append((h, r1, r2, b, t))
    id_atomic = tuple(f for f in facts if f[:2] not in ood)
    n_train = min(len(pool), round(args.phi * len(id_atomic)))
    rng_phi = random.Random(stable_seed("twohop", seed, "phi", args.ood_ratio, args.iid_test_prob, args.phi))
    train_twohop = tuple(rng_phi.sample(pool, n_train))
    return KG(
        atomic=atomic,
        id_atomic=id_atomic,
        ood_atomic=tuple(f for f in facts if f[:2] in ood),
        pool=tuple(pool),
        train_twohop=train_twohop,
        test_iid=tuple(test_iid),
        test_ood=tuple(test_ood),
    )


def atomic_problem(fact: Fact, split: str, ood: bool, n_entities: int) -> Problem:
    h, r, t = fact
    return Problem(
        id=f"twohop/{split}/e{h}.r{r}",
        task="twohop",
        split=split,
        prompt=f"e{h} r{r}",
        answer=f"e{t}",
        meta={"kind": "atomic", "ood": ood, "n_entities": n_entities},
    )


def twohop_problem(path: Path, split: str, ood: bool, n_entities: int) -> Problem:
    h, r1, r2, b, t = path
    return Problem(
        id=f"twohop/{split}/e{h}.r{r1}.r{r2}",
        task="twohop",
        split=split,
        prompt=f"e{h} r{r1} r{r2}",
        answer=f"e{t}",
        meta={
            "kind": "twohop",
            "bridge": f"e{b}",
            "hops": [[f"e{h}", f"r{r1}", f"e{b}"], [f"e{b}", f"r{r2}", f"e{t}"]],
            "ood": ood,
            "n_entities": n_entities,
        },
    )


def answer_tokens(completion: str) -> list[str]:
    """The completion's whitespace tokens up to (not including) the end marker `</a>`."""
    toks = completion.split()
    return toks[: toks.index(END_TOKEN)] if END_TOKEN in toks else toks


class TwoHop(Task):
    """(h, r1, r2) -> t, optionally through the bridge b; exact-match grading as in study C."""

    name = "twohop"
    Args = TwoHopArgs
    splits = ("train", "id_atomic", "ood_atomic", "train_inferred", "id", "ood")

    def problems(self, args: TaskArgs, split: str, n: int, seed: int) -> list[Problem]:
        """Items of a split. "train" returns every training item (shuffled; capped at n when 0 < n);
        the probe splits sample n items (all of them when n <= 0 or n exceeds the candidates)."""
        assert isinstance(args, TwoHopArgs)
        if split not in self.splits:
            raise ValueError(f"twohop has no split {split!r}; splits: {self.splits}")
        kg, N = build_kg(args, seed), args.n_entities
        rng = split_rng(self.name, seed, split)
        if split == "train":
            items = [atomic_problem(f, split, False, N) for f in kg.id_atomic]
            items += [atomic_problem(f, split, True, N) for f in kg.ood_atomic]
            items += [twohop_problem(p, split, False, N) for p in kg.train_twohop]
            rng.shuffle(items)
            return items[:n] if 0 < n < len(items) else items
        if split in ("id_atomic", "ood_atomic"):
            facts = kg.id_atomic if split == "id_atomic" else kg.ood_atomic
            chosen = rng.sample(facts, n) if 0 < n < len(facts) else list(facts)
            return [atomic_problem(f, split, split == "ood_atomic", N) for f in chosen]
        paths = {"train_inferred": kg.train_twohop, "id": kg.test_iid, "ood": kg.test_ood}[split]
        chosen_paths = rng.sample(paths, n) if 0 < n < len(paths) else list(paths)
        return [twohop_problem(p, split, split == "ood", N) for p in chosen_paths]

    def score(self, problem: Problem, completion: str) -> Score:
        """Atomic: the tokens are exactly [t]. Two-hop: the last token is t and, with two tokens, the
        first is the bridge b (a CoT answer counts only if both are right); more tokens are wrong."""
        toks = answer_tokens(completion)
        if not toks:
            return Score(correct=False, pred=None, finished=False)
        ok = toks[-1] == problem.answer
        if problem.meta.get("kind") == "twohop":
            ok = ok and (len(toks) == 1 or (len(toks) == 2 and toks[0] == problem.meta["bridge"]))
        else:
            ok = ok and len(toks) == 1
        return Score(correct=ok, pred=toks[-1], finished=True)

    def answer_only(self, problem: Problem) -> str:
        """The short answer completion for answer-only pretraining: the tail entity, e.g. `e44`."""
        return problem.answer


TASKS.register("twohop")(TwoHop())
