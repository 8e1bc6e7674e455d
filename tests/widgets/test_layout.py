"""LayoutView and BitView built headless: moving a control must change what is drawn."""

import math

import numpy as np
import pytest

from widgets.layout import BitView, LayoutView

LECTURE_NZ = "[0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]"


def test_layout_view_switches_layout_and_redraws():
    view = LayoutView((4, 4))
    assert list(view.layout_picker.options) == ["ND", "ColMajor", "zZ", "NZ"]
    before_svg, before_caption = view.picture.value, view.caption.value
    assert before_svg.startswith("<svg") and "element 5 at address 5" in before_svg

    view.layout_picker.value = "NZ"
    assert view.picture.value != before_svg and view.caption.value != before_caption
    # element 4 (row 1, col 0) sits at address 2 in NZ with 2×2 fractals
    assert "element 4 at address 2" in view.picture.value
    assert view.summary().splitlines()[1] == f"memory order: {LECTURE_NZ}"
    assert "layout NZ (h0=2, w0=2), 16 slots (0 padding), lit 16/16" in view.summary()


def test_layout_view_slider_lights_cells_in_address_order():
    view = LayoutView((4, 4), layouts=["ColMajor", "ND"])
    full = view.picture.value
    view.step.value = 3  # addresses 0, 1, 2 lit: elements 0, 4, 8 in column-major
    partial = view.picture.value
    assert partial != full
    assert partial.count('fill="#eeeeee"') > full.count('fill="#eeeeee"')
    assert "lit 3/16" in view.summary() and "lit 3/16" in view.caption.value
    # switching the layout resets to the full picture
    view.layout_picker.value = "ND"
    assert view.step.value == view.step.max == 16
    assert view.play.max == 16


def test_layout_view_feature_map_shows_padding_slots():
    view = LayoutView((1, 3, 2, 2), c0=4)
    assert list(view.layout_picker.options) == ["NCHW", "NHWC", "NC1HWC0"]
    view.layout_picker.value = "NC1HWC0"
    text = view.summary()
    assert "16 slots (4 padding)" in text
    assert "memory order: [0, 4, 8, pad, 1, 5, 9, pad, 2, 6, 10, pad, 3, 7, 11, pad]" in text
    assert "address 3: padding" in view.picture.value


def test_layout_view_draws_given_values_and_rejects_bad_input():
    view = LayoutView(np.array([[1.5, 2.5], [3.5, 4.5]]), layouts=["ND", "ColMajor"])
    assert ">1.5<" in view.picture.value
    with pytest.raises(ValueError, match="does not apply"):
        LayoutView((4, 4), layouts=["NHWC"])
    with pytest.raises(ValueError, match=r"\(H, W\) or a feature-map shape"):
        LayoutView((2, 3, 4))
    with pytest.raises(ValueError, match="h0 must be a positive integer"):
        LayoutView((4, 4), h0=0)


def test_layout_view_draws_a_custom_order_and_checks_it():
    yours = [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]
    view = LayoutView((4, 4), layouts=["NZ"], custom={"your to_nz": yours})
    nz_svg = view.picture.value
    view.layout_picker.value = "your to_nz"
    assert view.picture.value != nz_svg and "custom" in view.caption.value
    assert view.summary().splitlines()[1] == f"memory order: {yours}"
    with pytest.raises(ValueError, match=r"exactly once .* missing \[15\], 1 repeated"):
        LayoutView((4, 4), custom={"broken": list(range(15)) + [0]})


def test_bit_view_flip_exponent_bit_changes_value_live():
    view = BitView(26.0, "fp32")
    assert view.summary() == (
        "BitView fp32: 0 10000011 10100000000000000000000 (0x41D00000)\n"
        "(-1)^0 × 2^(131-127) × (1 + 0.625) = 26.0 (normal)"
    )
    assert len(view.buttons) == 32
    before = view.readout.value
    view.buttons[8].click()  # bit 23: the lowest exponent bit, 131 → 130
    assert view.value == 13.0
    assert view.value_input.value == 13.0
    assert view.readout.value != before and "13.0" in view.readout.value
    assert view.buttons[8].description == "0"
    assert view.buttons[8].style.button_color != view.buttons[7].style.button_color  # 0 vs 1 shades
    assert "rounds to" not in view.readout.value  # a flipped pattern is exact, nothing was rounded
    view.flip(31)
    assert view.value == -13.0


def test_bit_view_typing_and_format_switch_round_the_value():
    view = BitView(1.0, "bf16")
    view.value_input.value = 1.00390625  # exactly half-way between two bf16 values: ties to even
    assert view.bits == 0x3F80 and "rounds to 1.0" in view.readout.value
    view.format_picker.value = "fp8_e4m3"
    assert len(view.buttons) == 8
    assert view.summary().startswith("BitView fp8_e4m3: 0 0111 000")
    view.value_input.value = 500.0
    assert math.isnan(view.value) and "overflows to NaN" in view.readout.value
    view.flip(6)  # 0 1111 111 (NaN) → 0 0111 111 = 1.875
    assert view.value == 1.875
    with pytest.raises(ValueError, match="bits 0 … 7"):
        view.flip(8)


def test_bit_view_flipping_to_inf_keeps_the_typed_box_finite():
    view = BitView(1.0, "fp16")
    view.flip(14)  # 0 01111 → 0 11111: inf
    assert view.fields.kind == "inf"
    assert view.value_input.value == 1.0  # the text box keeps the last finite value
    assert "inf" in view.summary()
