/**
 * Wire format v1 ({@code shared/wire-format.md}): how an {@link io.stargazer.bus.Envelope} becomes the fields of a
 * stream entry and back ({@link io.stargazer.bus.wire.WireFormat}), and the error for an entry that does not follow it
 * ({@link io.stargazer.bus.wire.MalformedEntryException}). What a reader of the wire contract, or a test speaking it
 * from another language, needs; the bus uses it for every publish and delivery.
 */
package io.stargazer.bus.wire;
