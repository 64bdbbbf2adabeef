/**
 * Metrics and trace context for the bus through Micrometer, an optional dependency: {@link
 * io.stargazer.bus.micrometer.BusMetrics} (a {@code MeterBinder}) and {@link
 * io.stargazer.bus.micrometer.BusObservations} (the Observation API, which any tracer bridged to Micrometer records).
 * Only an application that has Micrometer on its path calls these classes; the rest of the bus names no Micrometer
 * type, and a bus with neither installed pays one volatile read per publish and per delivery.
 *
 * <p>Names and tags follow the OpenTelemetry messaging conventions where they have one; docs/observability.md lists
 * every meter and span.
 */
package io.stargazer.bus.micrometer;
