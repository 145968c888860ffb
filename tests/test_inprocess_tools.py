"""The in-process tool loader: tools that define the same flag names load and parse in one process."""

from absl import flags
from inprocess_tools import load_tool


def test_tools_sharing_a_flag_name_take_turns_on_the_global_flags():
    benchmark = load_tool("benchmark")
    benchmark_output = flags.FLAGS["output"]
    codec = load_tool("codec")  # defines --output too: a plain second import raised DuplicateFlagError
    assert flags.FLAGS["output"] is not benchmark_output and "model" in flags.FLAGS
    codec.FLAGS(["codec.py", "info", "--output=/tmp/out"])
    assert codec.FLAGS.output == "/tmp/out"
    assert load_tool("benchmark") is benchmark  # one module per process, its own flags back
    assert flags.FLAGS["output"] is benchmark_output and "model" not in flags.FLAGS
    assert "verbosity" in flags.FLAGS  # absl's own flags are never set aside with a tool's
    benchmark.FLAGS(["benchmark.py"])
    assert benchmark.FLAGS.output is None  # the codec's value does not leak into the benchmark
    flags.FLAGS.unparse_flags()
