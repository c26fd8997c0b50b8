# BUILD-file macros (pants.toml: [GLOBAL].build_file_prelude_globs).


def service_packages(name, **pex_fields):
    """A backend service's two packages, both entered at `<name>.main:main`:

    - `:<name>`, its pex: `./pants run src/python/<name>:<name>`, and what the tests and
      `./run` start;
    - `:dist`, its wheel `ticketing-<name>`: its own code only, requiring
      `ticketing-common` and its third-party packages by name. The image
      (src/docker/backend) installs it on top of those, resolved inside the image.
    """
    pex_binary(
        name=name,
        entry_point=f"{name}.main:main",
        execution_mode="venv",
        include_tools=True,
        **pex_fields,
    )
    python_distribution(
        name="dist",
        dependencies=[":lib"],
        provides=python_artifact(
            name=f"ticketing-{name}", version="0.1.0", python_requires=">=3.11"
        ),
        entry_points={"console_scripts": {name: f"{name}.main:main"}},
        wheel=True,
        sdist=False,
    )


def service_mains(*names):
    """The entry modules of the services a tool starts as processes (`python -m
    <name>.main`: started, not imported, so no import tells Pants of them); all five
    when no name is given."""
    services = names or ("auth", "tickets", "orders", "expiration", "payments")
    return [f"src/python/{name}/main.py:lib" for name in services]
