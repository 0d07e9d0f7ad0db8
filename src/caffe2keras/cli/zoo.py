"""``caffe2keras zoo``: Model Zoo nets by name: list, info, download (verified), convert (ready to predict)."""

from __future__ import annotations

import json

from caffe2keras.cli.common import add_progress_options, add_shape_options, wants_progress

CATALOG_HINT = "the catalog: the package's own, or the file $CAFFE2KERAS_ZOO_CATALOG names"


def register(commands) -> None:
    parser = commands.add_parser(
        "zoo",
        help="Caffe Model Zoo nets by name: list, info, download, convert",
        description=f"Caffe Model Zoo nets by name, from {CATALOG_HINT}. Downloads are checked against "
        "published hashes and kept in the cache ($CAFFE2KERAS_ZOO_CACHE, else the user's cache directory).",
    )
    actions = parser.add_subparsers(dest="zoo_command", required=True)

    listing = actions.add_parser("list", help="the catalogued nets")
    listing.add_argument("--task", help="only nets of this task (classification, detection, segmentation, pose...)")
    listing.set_defaults(run=run_list)

    info = actions.add_parser("info", help="everything the catalog knows about one net")
    info.add_argument("name")
    info.add_argument("--json", action="store_true", help="the catalog entry as JSON")
    info.set_defaults(run=run_info)

    download = actions.add_parser("download", help="fetch a net's files and check their hashes")
    _add_download_options(download)
    download.set_defaults(run=run_download)

    convert = actions.add_parser("convert", help="download a net and convert it, with its preprocessing and labels")
    _add_download_options(convert)
    convert.add_argument("-o", "--output", required=True, help="the .keras file to write")
    convert.add_argument(
        "--no-preprocess",
        action="store_true",
        help="leave the catalog's preprocessing out: the model takes the net's input blob as Caffe did",
    )
    add_shape_options(convert)
    convert.set_defaults(run=run_convert)


def _add_download_options(parser) -> None:
    parser.add_argument("name", help="the net's name (see `caffe2keras zoo list`)")
    parser.add_argument("--dir", help="put the files in this directory instead of the cache")
    parser.add_argument(
        "--from",
        dest="from_dir",
        metavar="DIR",
        help="offline: take the files from DIR (or DIR/NAME) instead of the network ($CAFFE2KERAS_ZOO_FROM)",
    )
    parser.add_argument(
        "--allow-unverified", action="store_true", help="download a net whose files have no published hash"
    )
    add_progress_options(parser)


def run_list(args) -> int:
    from caffe2keras.cli.common import UsageError
    from caffe2keras.console import printable
    from caffe2keras.zoo import load_catalog

    nets = list(load_catalog().values())
    shown = [net for net in nets if args.task is None or net.task == args.task]
    if not shown:
        tasks = ", ".join(sorted({net.task for net in nets}))
        raise UsageError(f"no net has that task; the tasks are {tasks}. Received: --task {args.task}")
    width = max(len(net.name) for net in shown)
    print(f"{'NAME':<{width}}  {'TASK':<16}  {'SIZE':>8}  CHECKED  LICENCE")
    for net in shown:
        size = net.files.get("weights", net.files.get("archive", {})).get("size")
        print(
            printable(
                f"{net.name:<{width}}  {net.task:<16}  {_megabytes(size):>8}  {'yes' if net.verified else 'no':<7}  "
                f"{net.licence_name}"
            )
        )
    unverified = sum(not net.verified for net in shown)
    print(f"{len(shown)} nets; {unverified} unverified (no published hash: `zoo download --allow-unverified`)")
    return 0


def _megabytes(size: int | None) -> str:
    if size is None:
        return "?"
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def run_info(args) -> int:
    from caffe2keras.console import printable
    from caffe2keras.zoo import get_net

    net = get_net(args.name)
    if args.json:
        print(printable(json.dumps(net.entry, indent=1, ensure_ascii=False)))
        return 0
    pre = net.preprocessing
    lines = [
        f"{net.name}: {net.summary}",
        f"task:          {net.task}",
        f"verified:      {'yes' if net.verified else 'no: ' + net.unverified_reason}",
        f"licence:       {net.license['text']}" + ("  [NON-COMMERCIAL]" if net.non_commercial else ""),
        f"citation:      {net.citation or 'unknown'}",
        f"input shape:   {net.input_shape or net.input_note or 'unknown'}",
        f"preprocessing: channel order {pre['channel_order'] or 'unknown'}, "
        f"mean {'file ' + net.files['mean']['filename'] if pre['mean_file'] else pre['mean']}, "
        f"scale {pre['scale']}, crop {pre['crop']}",
    ]
    if pre["note"]:
        lines.append(f"               {pre['note']}")
    for role, file in net.files.items():
        origin = f"member {file['member']}" if "member" in file else ", ".join(file["urls"])
        lines.append(
            f"{role + ':':<14} {file['filename']} ({_megabytes(file.get('size'))}, {file['hash'] or 'no hash'})"
        )
        lines.append(f"               {origin}")
    lines += [f"conflict:      {conflict}" for conflict in net.conflicts]
    if net.notes:
        lines.append(f"notes:         {net.notes}")
    print(printable("\n".join(lines)))
    return 0


def _download(args):
    from caffe2keras.console import printable
    from caffe2keras.zoo import download

    quiet = args.quiet
    return download(
        args.name,
        directory=args.dir,
        from_dir=args.from_dir,
        allow_unverified=args.allow_unverified,
        progress=wants_progress(args),
        echo=lambda line: None if quiet else print(printable(line)),
    )


def run_download(args) -> int:
    downloaded = _download(args)
    if not args.quiet:
        for role, path in downloaded.paths.items():
            print(f"{role + ':':<10} {path}")
    return 0


def run_convert(args) -> int:
    from caffe2keras.cli.common import UsageError, describe, parse_shape_args, save_atomically
    from caffe2keras.zoo.convert import convert_downloaded, preprocessing_options

    if not args.output.endswith(".keras"):  # before a download of hundreds of megabytes
        raise UsageError(f"the output must be a .keras file. Received: -o {args.output}")
    downloaded = _download(args)
    if "prototxt" not in downloaded.paths or "weights" not in downloaded.paths:
        from caffe2keras.errors import ZooError

        raise ZooError(
            f"{args.name} has no catalogued prototxt and weights to convert; its files are in "
            f"{downloaded.directory}. Received: name={args.name!r}"
        )
    preprocess = not args.no_preprocess
    if preprocess and preprocessing_options(downloaded.net, downloaded.paths) is None and not args.quiet:
        print(f"{args.name}: the catalog does not say how the net was fed; converting without preprocessing")
    progress = wants_progress(args)
    model = convert_downloaded(
        downloaded,
        preprocess=preprocess,
        input_shapes=parse_shape_args(args.input_shape),
        data_format=args.data_format,
        progress=progress,
    )
    save_atomically(model, args.output, progress)
    if not args.quiet:
        print(f"wrote {args.output}: {describe(model)}")
    return 0
