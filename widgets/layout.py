"""LayoutView and BitView: see where each element lives in memory, and what each bit of a float does.

- :class:`LayoutView` draws one small matrix (or NCHW feature map) as a grid whose cells are coloured
  by their memory address, and the linear memory underneath; switch the layout (ND, column-major,
  zZ, NZ, NCHW, NHWC, NC1HWC0) and press Play to watch the cells light up in address order.
- :class:`BitView` shows a float's bits as buttons coloured sign / exponent / mantissa; click one to
  flip it and the decoded value updates live; type a value or switch format to see it rounded.

Both read plain data from :mod:`aisys.framework.layout` and :mod:`aisys.framework.bits`.
"""

from __future__ import annotations

import html
import math
from typing import Sequence

import ipywidgets as widgets
import numpy as np

from aisys.framework import bits as _bits
from aisys.framework import layout as _layout

__all__ = ["LayoutView", "BitView"]

# viridis-like stops: dark blue (address 0) → green → yellow (last address)
_STOPS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
_UNLIT = "#eeeeee"
_PAD = "#d0d0d0"

_LAYOUT_NOTES = {
    "ND": "row-major (ND): row after row, the default of numpy and PyTorch",
    "ColMajor": "column-major: column after column (Fortran, BLAS)",
    "zZ": "zZ: fractals row by row, row-major inside each fractal",
    "nZ": "nZ: fractals row by row, column-major inside (Ascend weights)",
    "NZ": "NZ (zN): fractals column by column, row-major inside (Ascend FRACTAL_NZ)",
    "NCHW": "NCHW: each channel is one contiguous H×W plane",
    "NHWC": "NHWC: the channels of one pixel sit side by side",
    "NC1HWC0": "NC1HWC0: channels cut into blocks of C0, each block stored H×W×C0, C zero-padded",
    "NC4HW4": "NC4HW4: NC1HWC0 with C0 = 4 (MNN, 4-wide SIMD)",
}


def _address_colour(address: int, count: int) -> str:
    """A colour for ``address`` out of ``count``: the colour order is the memory order."""
    t = 0.0 if count <= 1 else address / (count - 1)
    pos = t * (len(_STOPS) - 1)
    i = min(int(pos), len(_STOPS) - 2)
    f = pos - i
    r, g, b = (round(a + (c - a) * f) for a, c in zip(_STOPS[i], _STOPS[i + 1]))
    return f"#{r:02x}{g:02x}{b:02x}"


def _text_colour(address: int, count: int) -> str:
    t = 0.0 if count <= 1 else address / (count - 1)
    return "#000000" if t > 0.55 else "#ffffff"


def _format_list(values: Sequence[int], limit: int = 64) -> str:
    shown = ", ".join("pad" if v < 0 else str(v) for v in values[:limit])
    return f"[{shown}{', …' if len(values) > limit else ''}]"


class LayoutView(widgets.VBox):
    """The same small tensor drawn under several memory layouts, lighting up in address order.

    ``data``: a shape — (H, W) for a matrix, (N, C, H, W) for a feature map — or an array / aisys
    Tensor of such a shape (its values are printed in the cells; by default the logical index).
    ``layouts``: names from :data:`aisys.framework.layout.LAYOUTS`; matrix default ND, ColMajor, zZ, NZ,
    feature-map default NCHW, NHWC, NC1HWC0. ``c0``/``h0``/``w0``: block sizes (small defaults so the
    padding is visible on a small example). ``custom``: extra {label: memory order} entries, e.g. the
    order your own conversion produced (``to_nz(index_matrix, 2, 2).reshape(-1)``), drawn the same way.
    """

    def __init__(self, data=(4, 4), layouts: Sequence[str] | None = None, *, c0: int = 4, h0: int = 2, w0: int = 2,
                 custom: dict | None = None, cell: int = 40, interval_ms: int = 300):
        if isinstance(data, tuple) and all(isinstance(n, (int, np.integer)) for n in data):
            shape = tuple(int(n) for n in data)
            values = np.arange(int(np.prod(shape))).reshape(shape)
        else:
            values = data.numpy() if hasattr(data, "numpy") and not isinstance(data, np.ndarray) else np.asarray(data)
            shape = tuple(values.shape)
        if len(shape) not in (2, 4):
            raise ValueError(
                f"LayoutView: expected a matrix shape (H, W) or a feature-map shape (N, C, H, W), got {shape}"
            )
        if int(np.prod(shape)) > 1024:
            raise ValueError(f"LayoutView: shape {shape} has {int(np.prod(shape))} elements; draw at most 1024")
        self.shape = shape
        self.values = values
        self.is_matrix = len(shape) == 2
        default = ("ND", "ColMajor", "zZ", "NZ") if self.is_matrix else ("NCHW", "NHWC", "NC1HWC0")
        allowed = _layout.MATRIX_LAYOUTS if self.is_matrix else _layout.TENSOR_LAYOUTS
        names = []
        for name in (layouts or default):
            canonical = _layout._canonical_layout(name)
            if canonical not in allowed:
                raise ValueError(
                    f"LayoutView: layout {name!r} does not apply to shape {shape}; use one of {', '.join(allowed)}"
                )
            names.append(canonical)
        self.params = {"c0": c0, "h0": h0, "w0": w0}
        self.cell = cell
        # compute every order once (and validate the block sizes before any widget exists)
        self.orders = {name: _layout.address_order(shape, name, **self.params) for name in names}
        for label, order in (custom or {}).items():
            if str(label) in self.orders:
                raise ValueError(f"LayoutView: custom label {label!r} is already a layout here; pick another name")
            self.orders[str(label)] = self._check_custom(str(label), order)
            names.append(str(label))

        self.layout_picker = widgets.ToggleButtons(options=names, value=names[0], description="layout")
        slots = len(self.orders[names[0]])
        self.play = widgets.Play(value=slots, min=0, max=slots, step=1, interval=interval_ms, description="play")
        self.step = widgets.IntSlider(value=slots, min=0, max=slots, step=1, description="addresses",
                                      continuous_update=True)
        widgets.jslink((self.play, "value"), (self.step, "value"))
        self.caption = widgets.HTML()
        self.picture = widgets.HTML()
        self.layout_picker.observe(self._on_layout, names="value")
        self.step.observe(self._on_step, names="value")
        super().__init__([self.layout_picker, widgets.HBox([self.play, self.step]), self.caption, self.picture])
        self.add_class("aisys-layout-view")   # the browser test finds the widget by it
        self._redraw()

    def _check_custom(self, label: str, order) -> np.ndarray:
        """A custom memory order must list every logical element exactly once (−1 marks padding)."""
        arr = np.asarray(order.numpy() if hasattr(order, "numpy") else order).reshape(-1)
        count = int(np.prod(self.shape))
        if not np.issubdtype(arr.dtype, np.integer):
            if arr.size and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            else:
                raise ValueError(f"LayoutView: custom order {label!r} must hold integer element indices, got {arr.dtype}")
        real = arr[arr >= 0]
        if sorted(real.tolist()) != list(range(count)) or np.any(arr < -1):
            missing = sorted(set(range(count)) - set(real.tolist()))[:8]
            raise ValueError(
                f"LayoutView: custom order {label!r} must list each of the {count} elements of shape {self.shape} "
                f"exactly once (−1 for padding); got {arr.size} entries, missing {missing}, "
                f"{real.size - len(set(real.tolist()))} repeated"
            )
        return arr.astype(np.int64)

    # ---- state ------------------------------------------------------------------------------
    @property
    def current(self) -> str:
        return self.layout_picker.value

    @property
    def order(self) -> np.ndarray:
        """Logical element at each address of the current layout (-1 = padding)."""
        return self.orders[self.current]

    def _params_text(self, name: str) -> str:
        if name in ("zZ", "nZ", "NZ"):
            return f" (h0={self.params['h0']}, w0={self.params['w0']})"
        if name == "NC1HWC0":
            return f" (C0={self.params['c0']})"
        return ""

    def _on_layout(self, change) -> None:
        slots = len(self.order)
        # full picture first, then the new range, so the slider never sits past its max
        self.play.max = self.step.max = max(slots, 1)
        self.play.value = self.step.value = slots
        self._redraw()

    def _on_step(self, change) -> None:
        self._redraw()

    # ---- drawing ---------------------------------------------------------------------------------
    def _redraw(self) -> None:
        name = self.current
        order = self.order
        slots = len(order)
        pads = int(np.count_nonzero(order < 0))
        note = _LAYOUT_NOTES.get(name, "a memory order given by you (custom)")
        self.caption.value = (
            f"<b>{html.escape(name)}{self._params_text(name)}</b> — {html.escape(note)}. "
            f"{slots} memory slots ({pads} padding); lit {self.step.value}/{slots}."
        )
        self.picture.value = self.svg()

    def svg(self) -> str:
        """The grid (cells coloured by address) above the linear memory strip, as an SVG string."""
        order = self.order
        slots = len(order)
        lit = self.step.value
        address_of = np.empty(int(np.prod(self.shape)), dtype=np.int64)
        real = order >= 0
        address_of[order[real]] = np.nonzero(real)[0]
        flat_values = self.values.reshape(-1)
        c = self.cell
        parts: list[str] = []

        def cell_box(x, y, logical, address, label_top):
            colour = _address_colour(address, slots) if address < lit else _UNLIT
            text = _text_colour(address, slots) if address < lit else "#888888"
            stroke = "#000000" if address == lit - 1 else "#ffffff"
            width = 3 if address == lit - 1 else 1
            value = flat_values[logical]
            shown = f"{value:.3g}" if isinstance(value, (float, np.floating)) else str(value)
            parts.append(
                f'<rect x="{x}" y="{y}" width="{c}" height="{c}" fill="{colour}" stroke="{stroke}" '
                f'stroke-width="{width}"><title>element {logical} at address {address}</title></rect>'
                f'<text x="{x + c / 2}" y="{y + c / 2 + 1}" font-size="{c * 0.34:.1f}" text-anchor="middle" '
                f'fill="{text}">{html.escape(shown)}</text>'
                f'<text x="{x + c - 3}" y="{y + c - 4}" font-size="{c * 0.25:.1f}" text-anchor="end" '
                f'fill="{text}">@{address}</text>'
            )

        # the logical grid(s)
        if self.is_matrix:
            H, W = self.shape
            panels = [((0, 0), "matrix")]
            N = C = 1
        else:
            N, C, H, W = self.shape
            panels = [((n, ch), f"n{n} c{ch}") for n in range(N) for ch in range(C)]
        gap = c // 2
        top = 18
        for (n, ch), title in panels:
            ox = ch * (W * c + gap)
            oy = top + n * (H * c + gap + 14)
            if not self.is_matrix:
                parts.append(f'<text x="{ox}" y="{oy - 4}" font-size="11" fill="#333">{title}</text>')
            for i in range(H):
                for j in range(W):
                    logical = ((n * C + ch) * H + i) * W + j if not self.is_matrix else i * W + j
                    cell_box(ox + j * c, oy + i * c, logical, int(address_of[logical]), title)
        grid_height = top + N * (H * c + gap + 14)
        grid_width = C * (W * c + gap)

        # the memory strip, wrapped every `per_row` addresses
        per_row = 16
        block = max(1, self._block_size())
        s = max(22, int(c * 0.7))
        strip_top = grid_height + 18
        parts.append(f'<text x="0" y="{strip_top - 6}" font-size="12" fill="#333">memory (address →)</text>')
        for address in range(slots):
            row, col = divmod(address, per_row)
            x, y = 34 + col * s + (col // block) * 4, strip_top + row * (s + 4)
            if col == 0:
                parts.append(f'<text x="0" y="{y + s * 0.65:.1f}" font-size="10" fill="#555">{address}</text>')
            logical = int(order[address])
            if address >= lit:
                fill, text = _UNLIT, "#999999"
            elif logical < 0:
                fill, text = _PAD, "#555555"
            else:
                fill, text = _address_colour(address, slots), _text_colour(address, slots)
            label = "pad" if logical < 0 else str(logical)
            parts.append(
                f'<rect x="{x}" y="{y}" width="{s - 2}" height="{s}" fill="{fill}" stroke="#ffffff">'
                f'<title>address {address}: {"padding" if logical < 0 else f"element {logical}"}</title></rect>'
                f'<text x="{x + (s - 2) / 2}" y="{y + s * 0.65:.1f}" font-size="{s * 0.38:.1f}" '
                f'text-anchor="middle" fill="{text}">{label}</text>'
            )
        rows = -(-slots // per_row)
        height = strip_top + rows * (s + 4) + 4
        width = max(grid_width, 34 + per_row * s + (per_row // block) * 4)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif">{"".join(parts)}</svg>'
        )

    def _block_size(self) -> int:
        """Addresses per block (a fractal, a C0 group) so the strip can show the blocks apart."""
        name = self.current
        if name not in _layout.LAYOUTS:
            return len(self.order)
        if name in ("zZ", "nZ", "NZ"):
            return self.params["h0"] * self.params["w0"]
        if name == "NC1HWC0":
            return self.params["c0"]
        if name == "NC4HW4":
            return 4
        if name == "NHWC":
            return self.shape[1]
        if name == "NCHW":
            return self.shape[2] * self.shape[3]
        return self.shape[1] if name == "ND" else self.shape[0]

    def summary(self) -> str:
        """Deterministic text: shape, current layout, how many addresses are lit, the memory order."""
        name = self.current
        order = self.order
        kind = "matrix" if self.is_matrix else "feature map (N, C, H, W)"
        lines = [
            f"LayoutView {kind} {self.shape}: layout {name}{self._params_text(name)}, "
            f"{len(order)} slots ({int(np.count_nonzero(order < 0))} padding), lit {self.step.value}/{len(order)}",
            f"memory order: {_format_list(order.tolist())}",
        ]
        return "\n".join(lines)


_FIELD_COLOURS = {  # (bit 0, bit 1)
    "sign": ("#f6d5d5", "#d9534f"),
    "exponent": ("#d6e4f5", "#3f7fc4"),
    "mantissa": ("#dcefd6", "#4f9a3a"),
}


class BitView(widgets.VBox):
    """A float's bits as clickable buttons; flip one and watch the decoded value change.

    ``value`` is rounded into ``fmt`` (round to nearest, ties to even). Buttons run from the sign
    (left) to the last mantissa bit (right), coloured sign / exponent / mantissa.
    """

    def __init__(self, value: float = 26.0, fmt: str = "fp32",
                 formats: Sequence[str] = ("fp32", "tf32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2")):
        names = [_bits.get_format(f).name for f in formats]
        fmt_name = _bits.get_format(fmt).name
        if fmt_name not in names:
            names.append(fmt_name)
        self._updating = False
        self.format_picker = widgets.Dropdown(options=names, value=fmt_name, description="format")
        self.value_input = widgets.FloatText(value=float(value), description="value", step=None)
        self.bit_row = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.readout = widgets.HTML()
        self.buttons: list[widgets.Button] = []
        self._typed = float(value)
        self._bits_value = 0
        self.format_picker.observe(self._on_format, names="value")
        self.value_input.observe(self._on_value, names="value")
        super().__init__([widgets.HBox([self.format_picker, self.value_input]), self.bit_row, self.readout])
        self.add_class("aisys-bit-view")   # the browser test finds the widget by it
        self._build_buttons()
        self._set_bits(_bits.to_bits(self._typed, self.fmt))

    # ---- state -----------------------------------------------------------------------------------
    @property
    def fmt(self) -> _bits.FloatFormat:
        return _bits.get_format(self.format_picker.value)

    @property
    def bits(self) -> int:
        return self._bits_value

    @property
    def fields(self) -> _bits.FloatFields:
        return _bits.decompose_bits(self._bits_value, self.fmt)

    @property
    def value(self) -> float:
        return self.fields.value

    def flip(self, bit: int) -> None:
        """Flip bit ``bit`` (0 = last mantissa bit) exactly as clicking its button does."""
        f = self.fmt
        if isinstance(bit, bool) or not isinstance(bit, (int, np.integer)) or not 0 <= bit < f.total_bits:
            raise ValueError(f"BitView.flip: bit {bit!r} outside {f.name} (bits 0 … {f.total_bits - 1})")
        self.buttons[f.total_bits - 1 - int(bit)].click()

    # ---- building and syncing ---------------------------------------------------------------------
    def _field_of(self, bit: int) -> str:
        f = self.fmt
        if bit == f.total_bits - 1:
            return "sign"
        return "exponent" if bit >= f.mantissa_bits else "mantissa"

    def _build_buttons(self) -> None:
        f = self.fmt
        self.buttons = []
        for bit in range(f.total_bits - 1, -1, -1):
            button = widgets.Button(
                description="0", tooltip=f"bit {bit} ({self._field_of(bit)}): click to flip",
                layout=widgets.Layout(width="28px", padding="0px", margin="1px"),
            )
            button.on_click(lambda _button, bit=bit: self._on_bit(bit))
            self.buttons.append(button)
        self.bit_row.children = tuple(self.buttons)

    def _set_bits(self, pattern: int) -> None:
        """Show ``pattern`` on the buttons and in the readout (no feedback into the observers)."""
        f = self.fmt
        self._bits_value = pattern
        for i, button in enumerate(self.buttons):
            bit = f.total_bits - 1 - i
            on = (pattern >> bit) & 1
            button.description = "1" if on else "0"
            button.style.button_color = _FIELD_COLOURS[self._field_of(bit)][on]
            button.style.text_color = "#ffffff" if on else "#333333"
        self.readout.value = self._readout_html()

    def _on_bit(self, bit: int) -> None:
        """A bit button was clicked: flip that bit, decode, and show the new value in the text box."""
        pattern = self._bits_value ^ (1 << bit)
        value = _bits.from_bits(pattern, self.fmt)
        if math.isfinite(value):
            self._typed = value  # the value now shown is exact in this format: no rounding note
            self._updating = True
            try:
                self.value_input.value = value
            finally:
                self._updating = False
        self._set_bits(pattern)

    def _on_value(self, change) -> None:
        if self._updating:
            return
        self._typed = float(change["new"])
        self._set_bits(_bits.to_bits(self._typed, self.fmt))

    def _on_format(self, change) -> None:
        self._build_buttons()
        self._set_bits(_bits.to_bits(self._typed, self.fmt))

    # ---- text --------------------------------------------------------------------------------------
    def _readout_html(self) -> str:
        fields = self.fields
        f = self.fmt
        spans = "".join(
            f'<span style="color:{_FIELD_COLOURS[name][1]};font-weight:bold">{text}</span> '
            for name, text in (("sign", fields.sign_bits), ("exponent", fields.exponent_bits),
                               ("mantissa", fields.mantissa_bits))
        )
        rounding = ""
        if math.isfinite(self._typed) and math.isfinite(fields.value) and self._typed != fields.value:
            error = abs(fields.value - self._typed)
            rel = error / abs(self._typed) if self._typed else math.inf
            rounding = (f"<br>typed {self._typed!r} rounds to {fields.value!r} in {f.name}: "
                        f"error {error:.3g} (relative {rel:.3g}; ulp here {_bits.ulp(fields.value, f):.3g})")
        elif math.isfinite(self._typed) and not math.isfinite(fields.value):
            rounding = (f"<br>typed {self._typed!r} is beyond {f.name}'s largest finite value {f.max_finite:.6g}: "
                        f"it overflows to {'inf' if f.has_inf else 'NaN (e4m3 has no inf)'}")
        legend = " · ".join(
            f'<span style="color:{_FIELD_COLOURS[name][1]}">{name} ({width} bit{"s" if width > 1 else ""})</span>'
            for name, width in (("sign", 1), ("exponent", f.exponent_bits), ("mantissa", f.mantissa_bits))
        )
        return (
            f'<div style="font-family:monospace">{legend}<br>{spans}'
            f"<br>{html.escape(fields.formula())} = <b>{fields.value!r}</b> ({fields.kind})"
            f"<br>{f.name}: {f.exponent_bits} exponent bits (bias {f.bias}), {f.mantissa_bits} mantissa bits; "
            f"max {f.max_finite:.6g}, min normal {f.min_normal:.6g}{rounding}</div>"
        )

    def summary(self) -> str:
        """Deterministic text: format, bit fields, the formula and the value."""
        fields = self.fields
        return (
            f"BitView {fields.format}: {fields.bit_string} (0x{fields.bits:0{-(-self.fmt.total_bits // 4)}X})\n"
            f"{fields.formula()} = {fields.value!r} ({fields.kind})"
        )
