"""`make bench`: python -m benchmarks [--out FILE] [--model DIR] [--tiny] [--log FILE].

Writes the figures as JSON and prints their table (docs/performance.md). The libraries'
messages go to --log, which is entered before TensorFlow loads."""
import argparse
import contextlib
import sys

import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from pipeline import run_log


def main(argv) -> int:
  parser = argparse.ArgumentParser(prog='python -m benchmarks', description=__doc__.split('\n')[2])
  parser.add_argument('--out', default='outputs/bench.json', help='where to write the figures (JSON)')
  parser.add_argument('--model', help='an exported model to measure serving on (default: a '
                      'newly exported untrained one)')
  parser.add_argument('--tiny', action='store_true', help='a few seconds of each benchmark: '
                      'checks that it runs, measures nothing')
  parser.add_argument('--log', help="send the libraries' messages to this file")
  args = parser.parse_args(argv)
  with run_log.to_file(args.log) if args.log else contextlib.nullcontext():
    from benchmarks import bench  # pylint: disable=import-outside-toplevel
    results = bench.run(args.out, bench.TINY if args.tiny else bench.FULL,
                        export_dir=args.model)
  print(f'\n{bench.table(results)}\n\n{args.out} ({results["seconds"]:.0f} s; '
        f'{results["machine"]["cpu"]}, {results["machine"]["cores"]} cores)')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
