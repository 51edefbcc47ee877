"""The Rust, Java, Ruby and PHP plans, run for real with bubblewrap on tiny projects. The sandbox sees the
host's /usr only, so each test needs its toolchain there (Debian's packages; a rustup toolchain under
~/.cargo does not count) and skips, naming the package, when it is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sandbox import CheckStatus, open_sandbox

from .conftest import settings_for, write_tree

# the sandbox's PATH: the host's toolchains outside these directories are not visible inside it
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
# compilers and JVMs need room beyond the hostile tests' small limits
ROOMY = {"memory_mb": 4096, "pids": 512, "timeout_s": 300.0}


def _need(tool: str, package: str) -> None:
    if shutil.which(tool, path=SANDBOX_PATH) is None:
        pytest.skip(f"{tool} is not installed in {SANDBOX_PATH} (Debian package: {package})")


RUST = {
    "Cargo.toml": '[package]\nname = "calc"\nversion = "0.1.0"\nedition = "2018"\n',
    "src/lib.rs": (
        "/// ```\n/// assert_eq!(calc::add(1, 2), 3);\n/// ```\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n"
        "pub mod ops {\n    pub fn double(a: i32) -> i32 {\n        a * 2\n    }\n\n"
        "    #[cfg(test)]\n    mod tests {\n        #[test]\n        fn doubles() {\n            assert_eq!(super::double(2), 4);\n        }\n\n"
        "        #[test]\n        fn wrong() {\n            assert_eq!(super::double(2), 5, \"double is off\");\n        }\n    }\n}\n"
    ),
    "tests/api.rs": "#[test]\nfn api_adds() {\n    assert_eq!(calc::add(2, 2), 4);\n}\n\n#[test]\n#[ignore]\nfn slow() {}\n",
}


async def test_rust_cargo_test(bwrap_settings, tmp_path):
    _need("cargo", "cargo")
    repo = write_tree(tmp_path / "rust", RUST)
    broken = write_tree(tmp_path / "broken", {**RUST, "src/lib.rs": "pub fn add(a: i32, b: i32) -> i32 {\n    a +\n}\n"})
    async with open_sandbox(settings_for("bwrap", **ROOMY), repo) as box:
        assert box.plan.language == "rust" and box.plan.setup == []  # no dependencies: nothing to fetch
        report = await box.check(repo)
        broken_report = await box.check(broken)
    tests = report.check("tests")
    assert tests.status == CheckStatus.FAILED, report.summary()
    assert tests.tests.model_dump() == {"passed": 3, "failed": 1, "errors": 0, "skipped": 1}  # 1 doc test
    assert [f.test_id for f in tests.failing_tests] == ["calc::ops::tests::wrong"]
    assert "double is off" in tests.failing_tests[0].traceback
    assert report.pass_rate == 0.75
    assert broken_report.check("tests").status == CheckStatus.ERROR
    assert broken_report.pass_rate_reason == "build failed in calc"


async def test_rust_workspace_fetches_in_the_setup_and_tests_offline(bwrap_settings, tmp_path):
    """A workspace with a path dependency: `cargo fetch` runs in the setup, the checks run offline with
    CARGO_HOME read-only."""
    _need("cargo", "cargo")
    repo = write_tree(tmp_path / "ws", {
        "Cargo.toml": '[workspace]\nmembers = ["calc", "app"]\n',
        **{f"calc/{k}": v for k, v in RUST.items()},
        "app/Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2018"\n\n'
                          '[dependencies]\ncalc = { path = "../calc" }\n',
        "app/src/lib.rs": "#[test]\nfn four() {\n    assert_eq!(calc::add(2, 2), 4);\n}\n",
    })
    async with open_sandbox(settings_for("bwrap", **ROOMY), repo) as box:
        assert box.plan.setup == [["cargo", "fetch"]]
        report = await box.check(repo)
    tests = report.check("tests")
    assert tests.tests.model_dump() == {"passed": 4, "failed": 1, "errors": 0, "skipped": 1}, report.summary()
    assert [f.test_id for f in tests.failing_tests] == ["calc::ops::tests::wrong"]


JAVA = {
    "pom.xml": (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n  <modelVersion>4.0.0</modelVersion>\n'
        "  <groupId>example</groupId>\n  <artifactId>calc</artifactId>\n  <version>1.0</version>\n"
        "  <properties>\n    <maven.compiler.source>11</maven.compiler.source>\n"
        "    <maven.compiler.target>11</maven.compiler.target>\n"
        "    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>\n  </properties>\n"
        "  <dependencies>\n    <dependency>\n      <groupId>junit</groupId>\n      <artifactId>junit</artifactId>\n"
        "      <version>4.13.2</version>\n      <scope>test</scope>\n    </dependency>\n  </dependencies>\n</project>\n"
    ),
    "src/main/java/calc/Calc.java": "package calc;\n\npublic class Calc {\n    public static int add(int a, int b) {\n"
                                    "        return a + b;\n    }\n}\n",
    "src/test/java/calc/CalcTest.java": (
        "package calc;\n\nimport static org.junit.Assert.assertEquals;\n\nimport org.junit.Ignore;\nimport org.junit.Test;\n\n"
        "public class CalcTest {\n    @Test\n    public void adds() {\n        assertEquals(3, Calc.add(1, 2));\n    }\n\n"
        "    @Test\n    public void wrong() {\n        assertEquals(\"add is off\", 3, Calc.add(1, 1));\n    }\n\n"
        "    @Ignore(\"later\")\n    @Test\n    public void later() {\n    }\n}\n"
    ),
}


# the same project on JUnit 5 (Jupiter)
JAVA_JUNIT5 = {
    **JAVA,
    "pom.xml": JAVA["pom.xml"].replace("<groupId>junit</groupId>", "<groupId>org.junit.jupiter</groupId>")
    .replace("<artifactId>junit</artifactId>", "<artifactId>junit-jupiter</artifactId>").replace("4.13.2", "5.9.2"),
    "src/test/java/calc/CalcTest.java": (
        "package calc;\n\nimport static org.junit.jupiter.api.Assertions.assertEquals;\n\n"
        "import org.junit.jupiter.api.Disabled;\nimport org.junit.jupiter.api.Test;\n\n"
        "class CalcTest {\n    @Test\n    void adds() {\n        assertEquals(3, Calc.add(1, 2));\n    }\n\n"
        "    @Test\n    void wrong() {\n        assertEquals(3, Calc.add(1, 1), \"add is off\");\n    }\n\n"
        "    @Disabled(\"later\")\n    @Test\n    void later() {\n    }\n}\n"
    ),
}


@pytest.mark.parametrize(("files", "junit", "package"), [(JAVA, "junit/junit/4.13.2", "junit4"),
                                                         (JAVA_JUNIT5, "org/junit/jupiter/junit-jupiter/5.9.2", "junit5")])
async def test_java_maven_offline_from_debians_repository(bwrap_settings, tmp_path, files, junit, package):
    """junit and Maven's plugins come from Debian's /usr/share/maven-repo: the setup copies them into the
    environment's repository, the checks run `mvn -o` against it."""
    _need("mvn", "maven")
    if shutil.which("javac", path=SANDBOX_PATH) is None:
        pytest.skip("javac is not installed (Debian package: default-jdk-headless)")
    for jar, needs in ((junit, package), ("org/apache/maven/plugins/maven-surefire-plugin", "libsurefire-java"),
                       ("org/apache/maven/plugins/maven-compiler-plugin", "libmaven-compiler-plugin-java"),
                       ("org/apache/maven/plugins/maven-resources-plugin", "libmaven-resources-plugin-java")):
        if not (Path("/usr/share/maven-repo") / jar).is_dir():
            pytest.skip(f"/usr/share/maven-repo/{jar} is missing (Debian package: {needs})")
    repo = write_tree(tmp_path / "java", files)
    broken = write_tree(tmp_path / "broken", {**files, "src/main/java/calc/Calc.java": "package calc;\n\npublic class Calc {\n"})
    async with open_sandbox(settings_for("bwrap", **ROOMY), repo) as box:
        assert box.plan.language == "java"
        report = await box.check(repo)
        broken_report = await box.check(broken)
    tests = report.check("tests")
    assert tests.status == CheckStatus.FAILED, report.summary()
    assert tests.tests.model_dump() == {"passed": 1, "failed": 1, "errors": 0, "skipped": 1}
    assert [f.test_id for f in tests.failing_tests] == ["calc.CalcTest#wrong"]
    assert "add is off" in tests.failing_tests[0].message
    assert report.pass_rate == 0.5
    assert broken_report.check("tests").status == CheckStatus.ERROR, broken_report.summary()
    assert broken_report.pass_rate_reason == "build failed in compile"


PHP = {
    "composer.json": '{"name": "example/calc", "autoload": {"psr-4": {"Calc\\\\": "src/"}}}\n',
    "phpunit.xml.dist": ('<?xml version="1.0" encoding="UTF-8"?>\n<phpunit bootstrap="vendor/autoload.php">\n'
                         '  <testsuites>\n    <testsuite name="calc">\n      <directory>tests</directory>\n'
                         '    </testsuite>\n  </testsuites>\n</phpunit>\n'),
    "src/Calc.php": "<?php\n\nnamespace Calc;\n\nfinal class Calc\n{\n    public static function add(int $a, int $b): int\n"
                    "    {\n        return $a + $b;\n    }\n}\n",
    "tests/CalcTest.php": (
        "<?php\n\nuse Calc\\Calc;\nuse PHPUnit\\Framework\\TestCase;\n\nfinal class CalcTest extends TestCase\n{\n"
        "    public function testAdds(): void\n    {\n        $this->assertSame(3, Calc::add(1, 2));\n    }\n\n"
        "    public function testWrong(): void\n    {\n        $this->assertSame(3, Calc::add(1, 1), 'add is off');\n    }\n\n"
        "    public function testLater(): void\n    {\n        $this->markTestSkipped('later');\n    }\n}\n"
    ),
}


async def test_php_composer_autoload_and_phpunit(bwrap_settings, tmp_path):
    """Composer writes the autoloader into the environment (vendor is linked into each check's workspace);
    the project's classes load from /workspace; Debian's phpunit runs the tests."""
    _need("php", "php-cli")
    _need("phpunit", "phpunit")
    _need("composer", "composer")
    repo = write_tree(tmp_path / "php", PHP)
    broken = write_tree(tmp_path / "broken", {**PHP, "tests/CalcTest.php": PHP["tests/CalcTest.php"].replace("void\n", "void\n{", 1)})
    async with open_sandbox(settings_for("bwrap", **ROOMY), repo) as box:
        assert box.plan.language == "php" and box.plan.setup[0][0] == "composer"
        report = await box.check(repo)
        broken_report = await box.check(broken)
    assert not (repo / "vendor").exists()
    tests = report.check("tests")
    assert tests.status == CheckStatus.FAILED, report.summary()
    assert tests.tests.model_dump() == {"passed": 1, "failed": 1, "errors": 0, "skipped": 1}
    assert [(f.test_id, f.message) for f in tests.failing_tests] == [("CalcTest::testWrong", "add is off")]
    assert report.pass_rate == 0.5
    assert broken_report.check("tests").status == CheckStatus.ERROR, broken_report.summary()
    assert broken_report.pass_rate_reason == "build failed in tests/CalcTest.php"


RUBY = {
    "lib/calc.rb": "module Calc\n  def self.add(a, b)\n    a + b\n  end\nend\n",
    "spec/calc_spec.rb": (
        'require "calc"\n\nRSpec.describe Calc do\n  describe ".add" do\n    it "adds" do\n'
        "      expect(Calc.add(1, 2)).to eq(3)\n    end\n\n    it \"is wrong\" do\n      expect(Calc.add(1, 1)).to eq(3)\n"
        '    end\n\n    it "waits", skip: "later" do\n    end\n  end\nend\n'
    ),
    "test/calc_test.rb": (
        'require "minitest/autorun"\nrequire "calc"\n\nclass CalcTest < Minitest::Test\n  def test_adds\n'
        "    assert_equal 3, Calc.add(1, 2)\n  end\n\n  def test_boom\n    raise \"boom\"\n  end\nend\n"
    ),
}


async def test_ruby_rspec_and_minitest(bwrap_settings, tmp_path):
    _need("ruby", "ruby")
    _need("rspec", "ruby-rspec")
    repo = write_tree(tmp_path / "ruby", RUBY)
    broken = write_tree(tmp_path / "broken", {**RUBY, "lib/calc.rb": "module Calc\n  def self.add(a, b)\n    a +\n  end\nend\n"})
    async with open_sandbox(settings_for("bwrap", **ROOMY), repo) as box:
        assert box.plan.language == "ruby" and box.plan.setup == []  # no Gemfile: Debian's gems
        report = await box.check(repo)
        broken_report = await box.check(broken)
    rspec, minitest = report.check("tests"), report.check("minitest")
    assert rspec.tests.model_dump() == {"passed": 1, "failed": 1, "errors": 0, "skipped": 1}, report.summary()
    assert [f.test_id for f in rspec.failing_tests] == ["spec/calc_spec.rb::Calc.add is wrong"]
    assert minitest.tests.model_dump() == {"passed": 1, "failed": 0, "errors": 1, "skipped": 0}, report.summary()
    assert [f.test_id for f in minitest.failing_tests] == ["CalcTest#test_boom"]
    assert report.pass_rate == 0.5  # RSpec's, the first check with counts
    assert broken_report.check("tests").status == CheckStatus.ERROR
    assert broken_report.check("minitest").status == CheckStatus.ERROR
    assert broken_report.pass_rate_reason == "collection error in spec/calc_spec.rb"


async def test_rust_registry_dependency_from_debian(bwrap_settings, tmp_path):
    """A crates.io dependency (cfg-if), served by Debian's packaged crates through the project's source
    replacement: `cargo fetch` in the setup, `cargo test --offline` with CARGO_HOME read-only."""
    _need("cargo", "cargo")
    if not any(Path("/usr/share/cargo/registry").glob("cfg-if-1.*")):
        pytest.skip("/usr/share/cargo/registry has no cfg-if 1.x (Debian package: librust-cfg-if-dev)")
    repo = write_tree(tmp_path / "dep", {
        "Cargo.toml": '[package]\nname = "dep"\nversion = "0.1.0"\nedition = "2018"\n\n[dependencies]\ncfg-if = "1"\n',
        ".cargo/config.toml": '[source.crates-io]\nreplace-with = "debian"\n\n'
                              '[source.debian]\ndirectory = "/usr/share/cargo/registry"\n',
        "src/lib.rs": 'cfg_if::cfg_if! {\n    if #[cfg(unix)] {\n        pub fn os() -> &\'static str { "unix" }\n'
                      '    } else {\n        pub fn os() -> &\'static str { "other" }\n    }\n}\n\n'
                      '#[test]\nfn unix() {\n    assert_eq!(os(), "windows");\n}\n',
    })
    async with open_sandbox(settings_for("bwrap", **ROOMY), repo) as box:
        assert box.plan.setup == [["cargo", "fetch"]]
        report = await box.check(repo)
    tests = report.check("tests")
    assert tests.tests.model_dump() == {"passed": 0, "failed": 1, "errors": 0, "skipped": 0}, report.summary()
    assert [f.test_id for f in tests.failing_tests] == ["dep::unix"]
    assert '"windows"' in tests.failing_tests[0].traceback  # the assertion's right side


async def test_php_composer_dependency_lives_in_the_environment(bwrap_settings, tmp_path):
    """A required package (from a path repository: no Packagist here) is installed by the setup into
    /opt/aura-env/vendor and autoloads in the checks, as the project's own classes do."""
    _need("php", "php-cli")
    _need("phpunit", "phpunit")
    _need("composer", "composer")
    repo = write_tree(tmp_path / "app", {
        "packages/greeter/composer.json": '{"name": "example/greeter", "version": "1.0.0", '
                                          '"autoload": {"psr-4": {"Greeter\\\\": "src/"}}}\n',
        "packages/greeter/src/Greeter.php": "<?php\n\nnamespace Greeter;\n\nfinal class Greeter\n{\n"
                                            "    public static function greet(string $name): string\n    {\n"
                                            '        return "Hello, $name";\n    }\n}\n',
        "composer.json": '{"name": "example/app", "require": {"example/greeter": "1.0.0"},\n'
                         ' "repositories": [{"type": "path", "url": "packages/greeter", "options": {"symlink": false}}],\n'
                         ' "autoload": {"psr-4": {"App\\\\": "src/"}}}\n',
        "src/App.php": "<?php\n\nnamespace App;\n\nuse Greeter\\Greeter;\n\nfinal class App\n{\n"
                       "    public static function run(): string\n    {\n        return Greeter::greet('world');\n    }\n}\n",
        "tests/AppTest.php": "<?php\n\nuse App\\App;\nuse PHPUnit\\Framework\\TestCase;\n\nfinal class AppTest extends TestCase\n{\n"
                             "    public function testRun(): void\n    {\n        $this->assertSame('Hello, world', App::run());\n"
                             "    }\n}\n",
        "phpunit.xml": '<phpunit bootstrap="vendor/autoload.php"><testsuites><testsuite name="app">'
                       "<directory>tests</directory></testsuite></testsuites></phpunit>\n",
    })
    async with open_sandbox(settings_for("bwrap", **ROOMY), repo) as box:
        report = await box.check(repo)
        installed = await box.run(["sh", "-c", "readlink vendor && ls vendor/example"])
    assert report.all_green and report.check("tests").tests.passed == 1, report.summary()
    assert installed.output.split() == ["/opt/aura-env/vendor", "greeter"]
