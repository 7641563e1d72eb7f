"""The lazy provider loader (roi_tf/provider_loader.py): fast path, type resolution, guards, identical output.

Whatever needs a fresh interpreter runs in a subprocess: the loader must act before the provider package is
imported, and this test process may have imported it already. The subprocesses load the loader from its file,
not through ``roi_tf``, so they test the loader alone, whatever ``roi_tf/__init__.py`` imports; the
byte-identical test runs ``main.py`` as users do.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from roi_tf import provider_loader

REPO = Path(__file__).resolve().parents[1]
LOADER_FILE = REPO / "roi_tf" / "provider_loader.py"
PACKAGE = provider_loader.PACKAGE
ASSEMBLY = provider_loader.ASSEMBLY
PINNED_SUBMODULE_COUNT = 2212  # directories in cdktf-cdktf-provider-aws 21.22.1
SUBPROCESS_TIMEOUT = 600

# Loads the loader from its file as module ``loader``; ``loaded()`` lists the provider's submodules in
# sys.modules (not their ``_private`` halves), ``our_fqn_map()`` the provider's entries in jsii's FQN map.
PRELUDE = """
import importlib.util, json, sys
_spec = importlib.util.spec_from_file_location("provider_loader", LOADER_FILE)
loader = importlib.util.module_from_spec(_spec)
sys.modules["provider_loader"] = loader
_spec.loader.exec_module(loader)

def loaded():
    prefix = loader.PACKAGE + "."
    return sorted(
        name[len(prefix):] for name in sys.modules
        if name.startswith(prefix) and "." not in name[len(prefix):] and not name[len(prefix)].startswith("_")
    )

def our_fqn_map():
    from jsii import _reference_map
    return {k: v for k, v in _reference_map._submodule_fqn_map.items() if v.startswith(loader.PACKAGE + ".")}
""".replace("LOADER_FILE", repr(str(LOADER_FILE)))


def child_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != provider_loader.EAGER_ENV}
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    env.update(extra)
    return env


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run PRELUDE + code in a fresh interpreter from the repository root; it must exit 0."""
    return run_checked([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], **env)


def run_checked(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run argv from the repository root with the test environment; it must exit 0."""
    result = subprocess.run(
        argv,
        cwd=REPO,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-5000:]}"
    return result


def run_together(*commands: tuple[list[str], dict[str, str]]) -> list[subprocess.CompletedProcess[str]]:
    """``run_checked`` for independent commands, run at the same time (the slowest test of the suite)."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda command: run_checked(command[0], **command[1]), commands))


def last_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout.strip().splitlines()[-1])


def loader_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("roi_tf.provider_loader:")]


def package_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent


@functools.cache
def expected_fqn_map() -> dict[str, str]:
    """Submodule namespace -> Python module, read from the ``jsii_type="..."`` strings of every submodule."""
    jsii_type = re.compile(rb'jsii_type="([^"]*)"')
    expected: dict[str, str] = {}
    directories = sorted(
        entry for entry in package_dir().iterdir() if entry.is_dir() and not entry.name.startswith("_")
    )
    for directory in directories:
        fqns = set(jsii_type.findall((directory / "__init__.py").read_bytes()))
        assert fqns, f"{directory.name} declares no jsii types"
        namespaces = {fqn.decode().rsplit(".", 1)[0] for fqn in fqns}
        assert len(namespaces) == 1, f"{directory.name}: {sorted(namespaces)[:5]}"
        (namespace,) = namespaces
        assert namespace.startswith(f"{ASSEMBLY}.") and namespace.count(".") == 1, namespace
        assert namespace not in expected, f"{namespace} is declared by two submodules"
        expected[namespace] = f"{PACKAGE}.{directory.name}"
    assert len(expected) == len(directories) == PINNED_SUBMODULE_COUNT
    return expected


# --- the fast path ----------------------------------------------------------------------------------------

FAST_PROBE = """
import cdktf
from jsii import _reference_map

installed = loader.install()
before = loaded()
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
after_imports = loaded()
from cdktf_cdktf_provider_aws.provider import AwsProvider

app = cdktf.App()
stack = cdktf.TerraformStack(app, "probe")
AwsProvider(stack, "aws", region="eu-west-1")
Vpc(stack, "network", cidr_block="10.1.0.0/16", enable_dns_hostnames=True)
S3Bucket(stack, "bucket", bucket="roi-probe")
synthesized = json.loads(cdktf.Testing.synth(stack))
after_synth = loaded()

import cdktf_cdktf_provider_aws as package
lazy_attribute = package.sns_topic.SnsTopic.__jsii_type__
try:
    package.no_such_submodule
    missing = "no error"
except AttributeError as error:
    missing = str(error)
print(json.dumps({
    "installed": installed,
    "before": before,
    "after_imports": after_imports,
    "after_synth": after_synth,
    "after_attribute": loaded(),
    "synthesized": synthesized,
    "lazy_attribute": lazy_attribute,
    "missing": missing,
    "all": len(package.__all__),
    "public": sorted(vars(package)),
    "private": sorted(vars(package._private)),
    "dir_has_all": set(package.__all__) <= set(dir(package)),
    "fqn_map": our_fqn_map(),
}))
"""


@pytest.fixture(scope="module")
def fast_probe() -> dict[str, Any]:
    return last_json(run_python(FAST_PROBE))


def test_fast_path_imports_only_the_submodules_asked_for(fast_probe: dict[str, Any]) -> None:
    assert fast_probe["installed"] is True
    assert fast_probe["before"] == []
    assert fast_probe["after_imports"] == ["s3_bucket", "vpc"]
    assert fast_probe["after_synth"] == ["provider", "s3_bucket", "vpc"]
    assert fast_probe["after_attribute"] == ["provider", "s3_bucket", "sns_topic", "vpc"]


def test_fast_path_classes_synthesize(fast_probe: dict[str, Any]) -> None:
    synthesized = fast_probe["synthesized"]
    assert synthesized["provider"]["aws"] == [{"region": "eu-west-1"}]
    assert synthesized["resource"]["aws_vpc"]["network"] == {
        "cidr_block": "10.1.0.0/16",
        "enable_dns_hostnames": True,
    }
    assert synthesized["resource"]["aws_s3_bucket"]["bucket"] == {"bucket": "roi-probe"}


def test_package_attribute_imports_submodule_lazily(fast_probe: dict[str, Any]) -> None:
    assert fast_probe["lazy_attribute"] == f"{ASSEMBLY}.snsTopic.SnsTopic"
    assert fast_probe["missing"] == f"module {PACKAGE!r} has no attribute 'no_such_submodule'"
    assert fast_probe["all"] == PINNED_SUBMODULE_COUNT
    assert fast_probe["dir_has_all"] is True


def test_registered_fqn_map_is_exact_for_every_submodule(fast_probe: dict[str, Any]) -> None:
    assert fast_probe["fqn_map"] == expected_fqn_map()


def test_submodule_fqn_matches_every_jsii_type() -> None:
    expected = expected_fqn_map()
    computed = {provider_loader.submodule_fqn(module.rsplit(".", 1)[1]): module for module in expected.values()}
    assert computed == expected


# --- objects handed back from JavaScript -------------------------------------------------------------------

RESOLUTION_PROBE = """
import cdktf
from jsii import _reference_map
assert loader.install()
import cdktf_cdktf_provider_aws as package
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket, S3BucketTimeouts
from cdktf_cdktf_provider_aws.vpc import Vpc

app = cdktf.App()
stack = cdktf.TerraformStack(app, "probe")
Vpc(stack, "network", cidr_block="10.2.0.0/16")
bucket = S3Bucket(stack, "bucket", bucket="roi-resolution", timeouts=S3BucketTimeouts(create="7m"))
old_classes = {Vpc, S3Bucket, S3BucketTimeouts}
del Vpc, S3Bucket, S3BucketTimeouts

def forget(submodule):
    # Undo every trace of the import: module, package attribute, registered types, cached instances.
    module = f"{loader.PACKAGE}.{submodule}"
    for name in [name for name in sys.modules if name == module or name.startswith(module + ".")]:
        del sys.modules[name]
    for namespace in (package, package._private):
        vars(namespace).pop(submodule, None)
    prefix = loader.submodule_fqn(submodule) + "."
    for table in (_reference_map._types, _reference_map._data_types, _reference_map._enums,
                  _reference_map._interfaces):
        for fqn in [fqn for fqn in table if fqn.startswith(prefix)]:
            del table[fqn]
    refs = _reference_map._refs._refs
    for ref in [ref for ref, obj in refs.items() if type(obj).__module__.startswith(module)]:
        del refs[ref]

def describe(obj):
    cls = type(obj)
    fresh = sys.modules.get(cls.__module__)
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "is_fresh_class": fresh is not None and cls is getattr(fresh, cls.__name__, None),
        "is_old_class": cls in old_classes,
    }

def attempt(fetch):
    try:
        return {"ok": describe(fetch())}
    except ValueError as error:
        return {"error": str(error)}

forget("vpc")
forget("s3_bucket")
assert loaded() == [], loaded()

# Negative control: the same objects, with the loader's entries removed from the FQN map.
ours = our_fqn_map()
for fqn in ours:
    del _reference_map._submodule_fqn_map[fqn]
without_map = {
    "class": attempt(lambda: stack.node.find_child("network")),
    "struct": attempt(lambda: bucket.timeouts_input),
    "loaded": loaded(),
}
_reference_map._submodule_fqn_map.update(ours)

network = stack.node.find_child("network")  # class of a submodule not imported: vpc
timeouts = bucket.timeouts_input  # struct of a submodule not imported: s3_bucket
with_map = {
    "class": describe(network) | {
        "resource_type": network.terraform_resource_type,
        "path": network.node.path,
        "cidr_block_input": network.cidr_block_input,
    },
    "struct": describe(timeouts) | {"create": timeouts.create},
    "bucket": describe(stack.node.find_child("bucket")),
    "loaded": loaded(),
}
print(json.dumps({"without_map": without_map, "with_map": with_map}))
"""


@pytest.fixture(scope="module")
def resolution_probe() -> dict[str, Any]:
    return last_json(run_python(RESOLUTION_PROBE))


def test_objects_from_javascript_resolve_to_classes_of_unimported_submodules(
    resolution_probe: dict[str, Any],
) -> None:
    fresh = {"is_fresh_class": True, "is_old_class": False}
    with_map = resolution_probe["with_map"]
    assert with_map["class"] == fresh | {
        "class": f"{PACKAGE}.vpc.Vpc",
        "resource_type": "aws_vpc",
        "path": "probe/network",
        "cidr_block_input": "10.2.0.0/16",
    }
    assert with_map["struct"] == fresh | {"class": f"{PACKAGE}.s3_bucket.S3BucketTimeouts", "create": "7m"}
    assert with_map["bucket"] == fresh | {"class": f"{PACKAGE}.s3_bucket.S3Bucket"}
    assert with_map["loaded"] == ["s3_bucket", "vpc"]


def test_negative_control_without_the_fqn_map_the_same_objects_are_unknown_types(
    resolution_probe: dict[str, Any],
) -> None:
    # Proves the scenario above depends on the map: same process, same objects, map entries removed.
    assert resolution_probe["without_map"] == {
        "class": {"error": f"Unknown type: {ASSEMBLY}.vpc.Vpc"},
        "struct": {"error": f"Unknown interface: {ASSEMBLY}.s3Bucket.S3BucketTimeouts"},
        "loaded": [],
    }


# --- install(): cheap, idempotent, guarded ------------------------------------------------------------------


def test_install_is_idempotent_and_imports_nothing_heavy() -> None:
    result = run_python("""
        first, second = loader.install(), loader.install()
        finders = [type(f).__name__ for f in sys.meta_path if type(f).__module__ == "provider_loader"]
        heavy = [name for name in ("jsii", "cdktf", "constructs", loader.PACKAGE) if name in sys.modules]
        print(json.dumps([first, second, finders, heavy]))
    """)
    assert last_json(result) == [True, True, ["_LazyPackageFinder"], []]
    assert result.stderr == ""


def test_importing_roi_tf_defers_the_decision_to_the_providers_first_import() -> None:
    """The scripts' helpers (stackinfo: ~300 processes a test run) import roi_tf but never the provider: they must
    not pay for the decision (the distribution's metadata, the package's __init__.py). main.py still takes the fast
    path: tests/test_provider_loader.py's byte-identical test counts the submodules it imports."""
    result = run_checked([sys.executable, "-c", textwrap.dedent("""
        import json, sys
        import roi_tf.tools.stackinfo
        from roi_tf import provider_loader
        finders = [type(f).__name__ for f in sys.meta_path if type(f).__module__ == "roi_tf.provider_loader"]
        print(json.dumps([provider_loader._installed, finders, "importlib.metadata" in sys.modules]))
        import importlib.util
        spec = importlib.util.find_spec(provider_loader.PACKAGE)  # what an import asks first
        finders = [type(f).__name__ for f in sys.meta_path if type(f).__module__ == "roi_tf.provider_loader"]
        print(json.dumps([provider_loader._installed, finders, type(spec.loader).__name__]))
    """)])  # fmt: skip
    before, after = (json.loads(line) for line in result.stdout.splitlines()[-2:])
    assert before == [None, ["_InstallOnFirstImport"], False]
    assert after == [True, ["_LazyPackageFinder"], "_LazyPackageLoader"]


def test_install_does_nothing_when_package_already_imported() -> None:
    result = run_python("""
        import types
        sys.modules[loader.PACKAGE] = types.ModuleType(loader.PACKAGE)
        finders = [f for f in sys.meta_path if type(f).__module__ == "provider_loader"]
        print(json.dumps([loader.install(), len(finders)]))
    """)
    assert last_json(result) == [False, 0]
    assert result.stderr == ""


@pytest.mark.parametrize(("value", "fast"), [("1", False), ("true", False), ("0", True), ("", True)])
def test_eager_env_forces_normal_import_silently(value: str, fast: bool) -> None:
    result = run_python(
        """
        installed = loader.install()
        spec = importlib.util.find_spec(loader.PACKAGE)
        print(json.dumps([installed, type(spec.loader).__name__, loader.PACKAGE in sys.modules]))
        """,
        **{provider_loader.EAGER_ENV: value},
    )
    assert last_json(result) == [fast, "_LazyPackageLoader" if fast else "SourceFileLoader", False]
    assert result.stderr == ""


def test_jsii_without_resolution_hook_completes_the_normal_import() -> None:
    # Checked when the package is imported: the rest of __init__.py then runs as in a normal import.
    # The tail is cut to two of its imports to keep this cheap; the full eager import is tested above.
    result = run_python("""
        import dataclasses
        import cdktf
        from jsii import _reference_map
        assert loader.install()
        (finder,) = [f for f in sys.meta_path if isinstance(f, loader._LazyPackageFinder)]
        padding = "\\n" * finder.layout.head.count("\\n")
        tail = padding + "# eager imports\\nfrom . import vpc\\n\\nfrom . import s3_bucket\\n"
        finder.layout = dataclasses.replace(finder.layout, tail=tail)
        del _reference_map._submodule_fqn_map  # as in a jsii from before on-demand resolution
        import cdktf_cdktf_provider_aws as package
        from cdktf_cdktf_provider_aws.vpc import Vpc
        private = vars(package._private)
        print(json.dumps({
            "loaded": loaded(),
            "hooks": sorted({"__getattr__", "__dir__"} & (set(vars(package)) | set(private))),
            "bound": [name for name in ("vpc", "s3_bucket") if name in vars(package) and name in private],
            "vpc": Vpc.__jsii_type__,
        }))
    """)
    assert last_json(result) == {
        "loaded": ["s3_bucket", "vpc"],
        "hooks": [],
        "bound": ["vpc", "s3_bucket"],
        "vpc": f"{ASSEMBLY}.vpc.Vpc",
    }
    assert loader_lines(result.stderr) == [
        "roi_tf.provider_loader: this jsii has no on-demand type resolution hook "
        "(jsii._reference_map._submodule_fqn_map); using the normal, slow import of cdktf_cdktf_provider_aws"
    ]


def test_unexpected_layout_warns_once_and_falls_back(tmp_path: Path) -> None:
    # A look-alike package earlier on sys.path: the pinned distribution is installed, its layout is not.
    fake = tmp_path / PACKAGE
    (fake / "vpc").mkdir(parents=True)
    (fake / "vpc" / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("import publication\npublication.publish()\nfrom . import vpc\nx = 1\n")
    result = run_python(
        "print(json.dumps([loader.install(), loader.PACKAGE in sys.modules]))", PYTHONPATH=str(tmp_path)
    )
    assert last_json(result) == [False, False]
    assert loader_lines(result.stderr) == [
        "roi_tf.provider_loader: unexpected layout of cdktf-cdktf-provider-aws 21.22.1: "
        f"{fake / '__init__.py'}:4 is not a `from . import <submodule>` line: 'x = 1'; "
        "using the normal, slow import of cdktf_cdktf_provider_aws"
    ]


def test_real_layout_is_parsed_completely() -> None:
    layout = provider_loader.read_layout()
    source = layout.init_path.read_text(encoding="utf-8")
    assert len(layout.submodules) == PINNED_SUBMODULE_COUNT
    assert layout.head.endswith("\npublication.publish()\n")
    assert "from ._jsii import *\n" in layout.head
    assert "from . import" not in layout.head
    # The tail keeps the file's line numbers: one blank line per head line, then the rest of the file.
    assert source.startswith(layout.head)
    assert layout.tail == "\n" * layout.head.count("\n") + source[len(layout.head) :]


@pytest.mark.parametrize(
    ("source", "directories", "message"),
    [
        ("x = 1\n", {"a"}, "has 0 `publication.publish()` lines"),
        (
            "publication.publish()\npublication.publish()\nfrom . import a\n",
            {"a"},
            "has 2 `publication.publish()`",
        ),
        ("publication.publish()\n# only comments\n\n", {"a"}, "has no `from . import <submodule>` lines"),
        (
            "publication.publish()\nfrom . import a\nimport os\n",
            {"a"},
            ":3 is not a `from . import <submodule>`",
        ),
        (
            "publication.publish()\nfrom . import a, b\n",
            {"a", "b"},
            ":2 is not a `from . import <submodule>`",
        ),
        ("publication.publish()\nfrom . import a\nfrom . import a\n", {"a"}, "or duplicates"),
        (
            "publication.publish()\nfrom . import a\n",
            {"a", "b"},
            "imports 1 submodules but the package has 2",
        ),
        ("publication.publish()\nfrom . import a\nfrom . import b\n", {"a"}, "no directory: ['b']"),
    ],
)
def test_parse_init_rejects_unexpected_layouts(source: str, directories: set[str], message: str) -> None:
    with pytest.raises(provider_loader.LayoutError, match=re.escape(message)):
        provider_loader.parse_init(Path("pkg/__init__.py"), source, directories)


def test_parse_init_accepts_comments_and_blank_lines_after_publish() -> None:
    source = "import publication\npublication.publish()\n\n# Loading modules\nfrom . import a\nfrom . import b\n"
    layout = provider_loader.parse_init(Path("pkg/__init__.py"), source, {"a", "b"})
    assert layout.submodules == ("a", "b")
    assert layout.head == "import publication\npublication.publish()\n"


# --- byte-identical output ----------------------------------------------------------------------------------


def imported_submodules(stderr: str) -> set[str]:
    """The provider submodules a process imported, from its ``-X importtime`` report."""
    imported = set()
    for line in stderr.splitlines():
        # The cdktf CLI forwards the app's stderr as log lines: a report line may follow its log prefix.
        if "import time:" in line:
            package, _, submodule = line.rsplit("|", 1)[1].strip().partition(".")
            if package == PACKAGE and submodule and "." not in submodule and not submodule.startswith("_"):
                imported.add(submodule)
    return imported


def tree(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}


# main.py where another provider version is installed: the loader must step aside (the one real eager import of
# this file, ~13 s: every submodule gets imported, as without the loader), then report the package's namespace.
OTHER_VERSION_MAIN = """
import importlib.metadata, runpy
real_version = importlib.metadata.version
importlib.metadata.version = lambda name: "21.23.0" if name == loader.DISTRIBUTION else real_version(name)
sys.argv = ["main.py", "--outdir", OUTDIR]
try:
    runpy.run_path("main.py", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
import cdktf_cdktf_provider_aws as package
print(json.dumps({
    "loaded": len(loaded()),
    "loader": type(package.__loader__).__name__,
    "public": sorted(vars(package)),
    "private": sorted(vars(package._private)),
    "fqn_map": len(our_fqn_map()),
}))
"""


CDKTF_CLI = REPO / "node_modules" / ".bin" / "cdktf"


def test_main_output_is_byte_identical_with_and_without_the_loader(
    tmp_path: Path, synth_outdir: Path, fast_probe: dict[str, Any]
) -> None:
    """``python main.py`` with another provider version installed (the loader warns once and steps aside: the
    normal import), ``npx cdktf synth`` (the pinned CLI running cdktf.json's app, fast loader; the app directly where
    node_modules/ is absent) and the session's in-process synth give the same bytes; the fast way really is the
    fast way, and the normal way has the normal package."""
    code = PRELUDE + OTHER_VERSION_MAIN.replace("OUTDIR", repr(str(tmp_path / "normal")))
    # `cdktf synth` runs cdktf.json's app with CDKTF_OUTDIR set: that must be main.py, with the fast loader.
    config = json.loads((REPO / "cdktf.json").read_text())
    assert config["language"] == "python"
    app = shlex.split(config["app"])
    assert app[-1] == "main.py"
    if CDKTF_CLI.exists():
        # The pinned CLI itself (package.json; make test installs it): it runs the app and forwards its stderr.
        command = ["npx", "--no-install", "cdktf", "synth", "--output", str(tmp_path / "fast")]
        cli_run = (command, {"PYTHONPROFILEIMPORTTIME": "1", "CHECKPOINT_DISABLE": "1", "CI": "true"})
    else:
        cli_run = (app, {"CDKTF_OUTDIR": str(tmp_path / "fast"), "PYTHONPROFILEIMPORTTIME": "1"})
    eager, cli = run_together(([sys.executable, "-X", "importtime", "-c", code], {}), cli_run)
    report = cli.stdout + cli.stderr if CDKTF_CLI.exists() else cli.stderr
    assert loader_lines(eager.stderr) == [
        "roi_tf.provider_loader: cdktf-cdktf-provider-aws 21.23.0 is installed, but the fast loader was "
        "written for 21.22.1; using the normal, slow import of cdktf_cdktf_provider_aws"
    ]
    normal_package = last_json(eager)
    assert normal_package["loaded"] == PINNED_SUBMODULE_COUNT
    assert normal_package["loader"] == "SourceFileLoader"
    assert normal_package["fqn_map"] == 0
    # The fast package namespace is the normal one, plus the two PEP 562 hooks, minus eager submodules.
    submodule_names = {module.rsplit(".", 1)[1] for module in set(fast_probe["fqn_map"].values())}
    hooks = {"__getattr__", "__dir__"}
    for half in ("public", "private"):
        assert set(fast_probe[half]) - hooks - submodule_names == set(normal_package[half]) - submodule_names
        assert hooks <= set(fast_probe[half])

    normal_modules, fast_modules = imported_submodules(eager.stderr), imported_submodules(report)
    # Both ways really ran: all submodules the normal way, a few dozen the fast way.
    assert len(normal_modules) == PINNED_SUBMODULE_COUNT
    assert 0 < len(fast_modules) < PINNED_SUBMODULE_COUNT // 10, (
        f"main.py imported {len(fast_modules)} provider submodules: is provider_loader.install() "
        "called when roi_tf is imported, before anything imports the provider?"
    )

    normal, fast, session = tree(tmp_path / "normal"), tree(tmp_path / "fast"), tree(synth_outdir)
    stacks = set(json.loads(normal["manifest.json"])["stacks"])
    assert {"dev", "staging", "prod", "state-dev", "state-staging", "state-prod"} <= stacks
    assert {f"stacks/{stack}/cdk.tf.json" for stack in stacks} <= set(normal)
    for other in (fast, session):
        assert sorted(other) == sorted(normal)
        assert [name for name in normal if other[name] != normal[name]] == []
