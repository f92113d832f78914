export { freeTcpPort as freePort } from '../../common/src/ports.js'
