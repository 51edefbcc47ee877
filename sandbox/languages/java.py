"""Java: Maven (pom.xml) or Gradle (build.gradle, build.gradle.kts), judged from the JUnit XML reports
that Surefire and Gradle write per test class, merged into one file after the run.

Maven: the setup resolves every plugin, dependency and Surefire provider into /opt/aura-env/m2 by running
the build once; the checks run `mvn -o` against that repository. A settings file puts
Debian's /usr/share/maven-repo (maven-repo-helper's layout, filled by packages such as junit4 and
libsurefire-java) before Maven Central, so a project whose dependencies Debian packages needs no network.

Gradle: the wrapper (./gradlew) when the project has one, else `gradle` from the PATH. The setup fills
GRADLE_USER_HOME in the environment; the checks run `--offline` with a writable home in /tmp that reads
the cached modules through GRADLE_RO_DEP_CACHE and the wrapper's distributions from a copy.
"""

from __future__ import annotations

import re
from pathlib import Path

from sandbox.languages.junit import REPORT_ENV, parse_junit_cases
from sandbox.parsers import trim_traceback
from sandbox.plans import CheckSpec, Plan
from sandbox.reports import FailingTest, TestCounts

ENV = "/opt/aura-env"
MAVEN_SETTINGS = f"{ENV}/maven-settings.xml"
DEBIAN_MAVEN_REPO = "file:///usr/share/maven-repo"
_DEBIAN_REPO = f"<id>debian</id><url>{DEBIAN_MAVEN_REPO}</url>"
SETTINGS_XML = (
    f"<settings><localRepository>{ENV}/m2</localRepository>"
    "<profiles><profile><id>debian</id>"
    f"<repositories><repository>{_DEBIAN_REPO}</repository></repositories>"
    f"<pluginRepositories><pluginRepository>{_DEBIAN_REPO}</pluginRepository></pluginRepositories>"
    "</profile></profiles><activeProfiles><activeProfile>debian</activeProfile></activeProfiles></settings>\n"
)
MAVEN = ["mvn", "-B", "-s", MAVEN_SETTINGS, "-Dstyle.color=never"]

# every per-class report Surefire or Gradle wrote, under one root, into the runner's report file
COLLECT_REPORTS = (
    '{ echo "<testsuites>"; find . \\( -path "*/target/surefire-reports/TEST-*.xml" -o '
    '-path "*/build/test-results/*/TEST-*.xml" \\) -type f -exec sed -s "1{/^<?xml/d}" {} +; '
    f'echo "</testsuites>"; }} > "${REPORT_ENV}"'
)


def _then_collect(command: str) -> list[str]:
    return ["sh", "-c", f"{command}; status=$?; {COLLECT_REPORTS}; exit $status"]


def java_plan(repo_dir: Path) -> Plan:
    if (repo_dir / "pom.xml").is_file():
        return maven_plan()
    return gradle_plan(repo_dir)


def maven_plan() -> Plan:
    write_settings = ["sh", "-c", f'mkdir -p {ENV} && printf "%s" "$0" > {MAVEN_SETTINGS}', SETTINGS_XML]
    # the whole build once, tests included: Surefire resolves its provider (surefire-junit4, junit-platform)
    # only when it has tests to run; neither failing tests nor code that does not compile stop it
    resolve = [*MAVEN, "test", "-Dmaven.test.failure.ignore=true", "-Dmaven.compiler.failOnError=false"]
    test = " ".join([*MAVEN, "-o", "--fail-at-end", "test"])
    return Plan(language="java", setup=[write_settings, resolve],
                checks=[CheckSpec(name="tests", command=_then_collect(test), parser="surefire")])


def gradle_plan(repo_dir: Path) -> Plan:
    gradle = "./gradlew" if (repo_dir / "gradlew").is_file() else "gradle"
    home = f"{ENV}/gradle"
    setup = [["sh", "-c", f"{gradle} --no-daemon --console=plain testClasses"]]
    # a writable home in /tmp (kept for the session); the wrapper locks its distribution's zip, so the
    # distributions are copied in once
    test = (f"export GRADLE_USER_HOME=/tmp/gradle-home && mkdir -p $GRADLE_USER_HOME && "
            f"{{ [ ! -d {home}/wrapper ] || [ -d $GRADLE_USER_HOME/wrapper ] || cp -a {home}/wrapper $GRADLE_USER_HOME/; }} && "
            f"{gradle} --offline --no-daemon --console=plain --continue test")
    # setup_env: the setup's home is the environment's; the checks' home is set by their command
    return Plan(language="java", setup=setup, setup_env={"GRADLE_USER_HOME": home},
                env={"GRADLE_RO_DEP_CACHE": f"{home}/caches"},
                checks=[CheckSpec(name="tests", command=_then_collect(test), parser="surefire")])


_MAVEN_COMPILE = re.compile(r"^\[ERROR\] COMPILATION ERROR", re.M)
# a module's totals (the per-class lines end with "Time elapsed")
_MAVEN_TOTALS = re.compile(r"^\[\w+\] Tests run: (\d+), Failures: (\d+), Errors: (\d+), Skipped: (\d+)\s*$", re.M)
_GRADLE_COMPILE = re.compile(r"^> Task :(\S*compile\w*) FAILED", re.M)


def parse_java_reports(report: bytes | None, output: str) -> tuple[TestCounts | None, list[FailingTest]]:
    """Counts and failing tests (`package.Class#method`) from the merged reports; code that does not compile
    is a build error; None when neither tells anything."""
    counts, failing = parse_junit_cases(report, "#") if report and b"<testcase" in report else (None, [])
    gradle = _GRADLE_COMPILE.findall(output)
    if counts is None and (_MAVEN_COMPILE.search(output) or gradle):
        errors = [l for l in output.splitlines() if l.startswith("[ERROR]") or ": error:" in l]
        what = ", ".join(gradle) or "compile"
        return TestCounts(errors=1), [FailingTest(test_id=what, message="build failed",
                                                  traceback=trim_traceback("\n".join(errors) or output))]
    if counts is None and (totals := _MAVEN_TOTALS.findall(output)):  # no report: Surefire's totals
        counts = TestCounts()
        for run, failures, errors, skipped in totals:
            counts.failed += int(failures)
            counts.errors += int(errors)
            counts.skipped += int(skipped)
            counts.passed += int(run) - int(failures) - int(errors) - int(skipped)
    return counts, failing
