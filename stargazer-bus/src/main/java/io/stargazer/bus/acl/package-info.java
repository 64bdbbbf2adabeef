/**
 * Least privilege: {@link io.stargazer.bus.acl.AclRules} derives, from a {@link io.stargazer.bus.Topology}, one Redis
 * ACL user per {@link io.stargazer.bus.NodeRole} (and a read-only monitor) that may run only the commands the bus
 * sends for that role, on only that role's keys (docs/security.md).
 *
 * <p>Why it is in the library and not only in the node's {@code stargazer acl} command: the rules describe the
 * library's own code (which commands, scripts and keys each role's bus uses), so they change with it, in the same
 * module, and {@code AclIT} checks them against it on a real Redis 7; an application that runs its own gateway or
 * worker on the library under ACL users needs them as much as the node does.
 */
package io.stargazer.bus.acl;
