from __future__ import annotations

import dataclasses

import pytest

from estimators.targets import (
    KIB,
    Runtime,
    Target,
    TargetError,
    get_target,
    list_targets,
    register_target,
)

EXPECTED = {
    "stm32h7": ("xcubeai", {"xcubeai", "tflm-cmsis-nn", "tflm-ref"}),
    "esp32": ("tflm-esp-nn", {"tflm-esp-nn", "tflm-ref"}),
    "esp32s3": ("tflm-esp-nn", {"tflm-esp-nn", "tflm-ref"}),
}


def test_list_targets_has_the_three_boards_and_two_hosts_sorted():
    assert [t.name for t in list_targets()] == ["esp32", "esp32s3", "host-litert", "host-tflm",
                                                "stm32h7"]


def test_host_targets_use_the_64_bit_tail_and_budget_nothing_for_the_runtime():
    for name in ("host-litert", "host-tflm"):
        target = get_target(name)
        assert target.pointer_bytes == 8 and len(target.runtimes) == 1
        assert target.runtime.code_flash_bytes == 0 and target.runtime.ram_bytes == 0
    assert get_target("stm32h7").pointer_bytes == 4


def test_a_profile_suffix_selects_a_calibration():
    target = get_target("STM32H7@Lab")
    assert target.name == "stm32h7" and target.profile == "lab" and target.label == "stm32h7@lab"
    assert get_target("stm32h7").profile == ""
    with pytest.raises(TargetError, match="names no profile"):
        get_target("stm32h7@")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_target_values_are_sane(name):
    target = get_target(name)
    assert target.name == name
    assert 0 < target.default_ram_budget < target.sram_bytes
    assert 0 < target.default_flash_budget < target.flash_bytes
    assert 100 <= target.clock_mhz <= 480
    assert target.sources and all(s.strip() for s in target.sources)
    assert target.budget_reasoning.strip()
    assert target.board and target.core


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_runtimes(name):
    target = get_target(name)
    default, names = EXPECTED[name]
    assert target.runtime.name == default
    assert target.runtimes[0] == target.runtime
    assert set(target.runtime_names) == names
    for runtime in target.runtimes:
        assert runtime.source.strip() and runtime.label.strip()
        # Runtime overhead must leave most of the default budget for the model itself.
        assert 0 < runtime.code_flash_bytes < target.default_flash_budget // 2
        assert 0 < runtime.ram_bytes < target.default_ram_budget // 2


def test_stm32h7_ram_budget_fits_the_axi_sram_bank():
    # The arena must be contiguous: it cannot exceed the 512 KB AXI SRAM bank.
    assert get_target("stm32h7").default_ram_budget <= 512 * KIB


def test_xcubeai_covers_the_published_figures():
    # Largest code / runtime RAM among the ST rows whose weights fit the 2 MB flash.
    xcubeai = get_target("stm32h7").runtime
    assert xcubeai.code_flash_bytes >= 108.40 * KIB
    assert xcubeai.ram_bytes >= 30.19 * KIB


def test_esp_nn_on_s3_reserves_scratch():
    s3 = get_target("esp32s3")
    esp32 = get_target("esp32")
    assert s3.runtime.ram_bytes >= esp32.runtime.ram_bytes + 40 * KIB


def test_get_target_ignores_case_and_spaces():
    assert get_target(" STM32H7 ") is get_target("stm32h7")


def test_unknown_target_names_the_valid_ones():
    with pytest.raises(TargetError) as info:
        get_target("stm32h8")
    message = str(info.value)
    assert message == ("unknown target 'stm32h8'; valid targets: esp32, esp32s3, host-litert, "
                       "host-tflm, stm32h7 (a calibrated profile is written target@profile)")
    assert "\n" not in message


def test_target_error_is_a_value_error():
    assert issubclass(TargetError, ValueError)


def test_with_runtime_puts_the_chosen_runtime_first():
    base = get_target("stm32h7")
    tflm = base.with_runtime("tflm-cmsis-nn")
    assert tflm.runtime.name == "tflm-cmsis-nn"
    assert tflm.runtimes[0] == tflm.runtime
    assert set(tflm.runtime_names) == set(base.runtime_names)
    assert tflm.default_ram_budget == base.default_ram_budget
    # The registry entry is untouched.
    assert get_target("stm32h7").runtime.name == "xcubeai"


def test_with_runtime_unknown_names_the_valid_ones():
    with pytest.raises(TargetError) as info:
        get_target("esp32").with_runtime("xcubeai")
    assert str(info.value) == ("unknown runtime 'xcubeai' for target 'esp32'; "
                               "valid runtimes: tflm-esp-nn, tflm-ref")


def test_with_clock():
    target = get_target("stm32h7").with_clock(480)
    assert target.clock_mhz == 480
    assert "480 MHz" in target.notes
    assert get_target("stm32h7").clock_mhz == 400
    for bad in (0, -1, 1.5, True):
        with pytest.raises(TargetError):
            get_target("stm32h7").with_clock(bad)


def test_targets_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_target("esp32").clock_mhz = 1  # type: ignore[misc]


def _runtime(name: str = "r") -> Runtime:
    return Runtime(name=name, label="R", code_flash_bytes=KIB, ram_bytes=KIB, source="test")


def _target(**changes: object) -> Target:
    fields: dict[str, object] = {
        "name": "test-board", "board": "B", "core": "C", "clock_mhz": 100,
        "sram_bytes": 64 * KIB, "flash_bytes": 256 * KIB, "default_ram_budget": 32 * KIB,
        "default_flash_budget": 128 * KIB, "runtime": _runtime(), "runtimes": (_runtime(),),
        "budget_reasoning": "because", "sources": ("datasheet",),
    }
    fields.update(changes)
    return Target(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("changes", [
    {"default_ram_budget": 128 * KIB},
    {"default_flash_budget": 512 * KIB},
    {"runtimes": (_runtime("other"),)},
    {"runtimes": (_runtime(), _runtime())},
    {"sources": ()},
    {"budget_reasoning": " "},
    {"clock_mhz": 0},
])
def test_invalid_targets_are_rejected(changes):
    with pytest.raises(TargetError):
        _target(**changes)


def test_runtime_needs_a_source():
    with pytest.raises(TargetError):
        Runtime(name="r", label="R", code_flash_bytes=1, ram_bytes=1, source="")


def test_register_target_refuses_duplicates():
    with pytest.raises(TargetError, match="already registered"):
        register_target(dataclasses.replace(get_target("esp32")))
