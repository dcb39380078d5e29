# The pipeline, built from the plan of the specs in params.yaml (or --config specs=a.yaml,b.yaml).
# One rule per stage; every job runs `repro run ID`. No logic here: see src/repro/snake.py.
#   snakemake --cores all                                        # the default experiments
#   snakemake --cores 2 --config specs=experiments/smoke.yaml     # one spec
#   snakemake --profile slurm                                     # on a SLURM cluster
from repro.snake import SnakePlan

configfile: "params.yaml"

P = SnakePlan(config)

wildcard_constraints:
    job=r"[^/]+",

localrules: all, publish

rule all:
    input: "reports/index.html",

for _stage in P.stages:
    rule:
        name: _stage
        output: P.output(_stage),
        input: P.inputs,
        log: P.log(_stage),
        threads: P.threads
        resources: **{k: P.resource(k) for k in P.resource_names(_stage)}
        group: P.group
        priority: P.priority
        params: cmd=P.command,
        shell: "{params.cmd} > {log} 2>&1"

rule publish:
    input: P.report_targets(),
    output: "reports/index.html",
    log: "logs/publish.log",
    params: cmd=P.publish_command(),
    shell: "{params.cmd} > {log} 2>&1"
