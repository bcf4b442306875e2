"""OPC UA simulator: `python -m edge.simulators.opcua --port 4840 --kind cnc_mill --fault none`.

Serves variables under ns=2 with string node ids `Machine1.<Group>.<Signal>`, e.g.
`ns=2;s=Machine1.Spindle.Speed`, refreshed every 100 ms from the machine model, and writable
control variables (CONTROL_IDS): the node's work agent starts and stops parts through them
(`Machine1.Job.Running`, with the part's mean power and duration written first), and
`Machine1.Sim.Fault` injects a fault at run time (edge/simulators/control.py writes them).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import time
from typing import Any

from asyncua import ua
from asyncua.server.server import Server

from edge.simulators.machines import Fault, MachineModel, apply_control

logger = logging.getLogger(__name__)

NAMESPACE = "urn:imewe:simulator"
# signal -> OPC UA string node id (ns=2)
NODE_IDS = {
    "spindle_rpm": "Machine1.Spindle.Speed",
    "torque_nm": "Machine1.Spindle.Torque",
    "power_kw": "Machine1.Drive.Power",
    "temperature_c": "Machine1.Spindle.Temperature",
    "vibration_mm_s": "Machine1.Spindle.Vibration",
    "progress_pct": "Machine1.Job.Progress",
}
# control -> (writable node id, OPC UA type, initial value)
CONTROL_IDS: dict[str, tuple[str, ua.VariantType, Any]] = {
    "load_kw": ("Machine1.Job.LoadKw", ua.VariantType.Double, 0.0),
    "seconds": ("Machine1.Job.Seconds", ua.VariantType.Double, 0.0),
    "running": ("Machine1.Job.Running", ua.VariantType.Boolean, False),
    "fault": ("Machine1.Sim.Fault", ua.VariantType.String, "none"),
}


async def serve(
    *, port: int, model: MachineModel, period: float = 0.1, ready: asyncio.Event | None = None
) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/imewe/")
    server.set_server_name("Imewe machine simulator")
    idx = await server.register_namespace(NAMESPACE)
    machine = await server.nodes.objects.add_object(idx, "Machine1")
    variables = {}
    for signal, node_id in NODE_IDS.items():
        variables[signal] = await machine.add_variable(
            ua.NodeId(ua.String(node_id), ua.Int16(idx)),
            node_id.split(".", 1)[1],
            0.0,
            varianttype=ua.VariantType.Double,
        )
    controls = {}
    for name, (node_id, varianttype, initial) in CONTROL_IDS.items():
        if name == "fault":
            initial = model.fault.value
        elif name == "running":
            initial = model.running
        controls[name] = await machine.add_variable(
            ua.NodeId(ua.String(node_id), ua.Int16(idx)),
            node_id.split(".", 1)[1],
            initial,
            varianttype=varianttype,
        )
        await controls[name].set_writable()
    started = time.monotonic()
    seen = {name: await variable.read_value() for name, variable in controls.items()}
    async with server:
        if ready is not None:
            ready.set()
        while True:
            t = time.monotonic() - started
            written = {name: await variable.read_value() for name, variable in controls.items()}
            if written != seen:
                await _apply(model, t, written, controls)
                seen = {name: await variable.read_value() for name, variable in controls.items()}
            values = model.sample(t)
            for signal, variable in variables.items():
                await variable.write_value(float(values.get(signal, 0.0)), ua.VariantType.Double)
            await asyncio.sleep(period)


async def _apply(model: MachineModel, t: float, written: dict[str, Any], controls: Any) -> None:
    """A client wrote the control variables: act on them; a bad value is logged and the
    variable shows the machine's state again."""
    try:
        load_kw, seconds = float(written["load_kw"]), float(written["seconds"])
        if not (math.isfinite(load_kw) and math.isfinite(seconds)):
            raise ValueError("load_kw and seconds must be finite")
        apply_control(
            model,
            t,
            running=bool(written["running"]),
            load_kw=load_kw,
            seconds=seconds,
            fault=str(written["fault"]),
        )
    except (TypeError, ValueError) as exc:
        logger.warning("ignored a control write %s: %s", written, exc)
        await controls["fault"].write_value(model.fault.value, ua.VariantType.String)
        await controls["running"].write_value(model.running, ua.VariantType.Boolean)
    else:
        logger.info(
            "control: running=%s load=%.2f kW fault=%s", model.running, model.load_kw, model.fault
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=4840)
    parser.add_argument("--kind", choices=["cnc_mill", "fdm_printer"], default="cnc_mill")
    parser.add_argument("--rated-power-kw", type=float, default=7.5)
    parser.add_argument("--fault", choices=[f.value for f in Fault], default="none")
    parser.add_argument(
        "--mtconnect-port", type=int, default=0, help="also answer as an MTConnect agent"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logger.setLevel(logging.INFO)  # parts started and faults injected show in the console
    model = MachineModel(
        kind=args.kind, rated_power_kw=args.rated_power_kw, fault=Fault(args.fault)
    )
    if args.mtconnect_port:
        from edge.simulators.mtconnect import MtConnectSimulator

        # the same machine, seen through a second protocol
        MtConnectSimulator(model, port=args.mtconnect_port).start()
    asyncio.run(serve(port=args.port, model=model))


if __name__ == "__main__":
    main()
