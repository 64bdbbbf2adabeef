/**
 * The implementation of the bus. Not API: nothing here is exported by the module (module-info.java), no public
 * signature of the API packages names a type of this package, and any of it may change in any release.
 * docs/architecture.md says which class owns what and which thread runs it.
 */
package io.stargazer.bus.internal;
